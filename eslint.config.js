import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Which top-level folders each folder may import (README, "Architecture"). Every folder may import
 * itself and npm packages; a relative import that climbs into any other folder is an error.
 * `*.test.ts` files follow their folder's rule: a test that needs more (the real server beside the
 * engine) belongs in `integration/`.
 */
const FOLDERS = [
  'src',
  'worker',
  'model',
  'protocol',
  'server',
  'tools',
  'bench',
  'e2e',
  'demo',
  'integration',
];
const MAY_IMPORT = {
  src: ['protocol'],
  demo: ['src', 'protocol'],
  worker: ['model', 'protocol'],
  model: ['protocol'],
  protocol: [],
  server: ['model', 'protocol'],
  tools: ['model', 'worker', 'server', 'protocol'],
  integration: ['src', 'worker', 'model', 'protocol', 'server', 'tools'],
  bench: ['src', 'worker', 'model', 'protocol', 'server', 'tools', 'demo'],
  e2e: ['src', 'worker', 'model', 'protocol', 'server', 'tools', 'demo'],
};

/** Packages that only mean something in Node: never in code that runs in a browser. */
const NODE_ONLY = ['node:*', ...builtinModules, 'better-sqlite3', 'pg', 'fastify', '@fastify/*'];

/** Per folder: its relative imports into folders it may not use, and, in browser code, Node. */
function boundaries(folder) {
  const denied = FOLDERS.filter((f) => f !== folder && !MAY_IMPORT[folder].includes(f));
  const patterns = denied.length
    ? [
        {
          regex: `^(\\.\\./)+(${denied.join('|')})(/|$)`,
          message: `${folder}/ may import only ${[folder, ...MAY_IMPORT[folder]].join(', ')} (README, "Architecture").`,
        },
      ]
    : [];
  return {
    files: [`${folder}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

/** Browser-side folders: no Node packages, and the model also knows nothing of storage or HTTP. */
function browserOnly(folder, extra = []) {
  const base = boundaries(folder);
  const [, options] = base.rules['no-restricted-imports'];
  return {
    files: [`${folder}/**/*.ts`],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...options.patterns,
            {
              group: [...NODE_ONLY, ...extra],
              message: `${folder}/ runs in the browser (or, for model/, in every runtime): no Node-only or storage/HTTP packages.`,
            },
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.hearth/**',
      'test-results/**',
      'playwright-report/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Plain Node scripts that run before dependencies are installed.
    files: ['**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
  {
    // Command-line programs talk to a terminal; that is their job.
    files: ['tools/**', 'bench/**', 'server/main.ts', 'e2e/**', 'integration/**', '.ci/**'],
    rules: { 'no-console': 'off' },
  },
  ...FOLDERS.map(boundaries),
  // The page's loader stays small: no model, no storage, and no secure-aggregation crypto (the worker's).
  browserOnly('src', ['@tensorflow/*', 'idb', '@noble/*', 'shamir-secret-sharing', '**/secagg/*']),
  browserOnly('demo', ['@tensorflow/*', 'idb']),
  browserOnly('worker'),
  browserOnly('protocol', ['@tensorflow/*', 'idb', 'comlink']),
  browserOnly('model', ['idb', 'comlink']),
  {
    // The model is pure tfjs: it neither stores nor fetches anything.
    files: ['model/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['indexedDB', 'fetch', 'XMLHttpRequest', 'caches', 'localStorage', 'navigator'].map(
          (name) => ({ name, message: 'model/ knows nothing of storage, HTTP or the browser.' }),
        ),
      ],
    },
  },
);
