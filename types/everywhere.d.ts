/**
 * The few globals that every runtime Hearth runs in has (a page, a Web Worker, Node), declared for
 * the runtime-neutral folders protocol/ and model/, whose type checks see no DOM, WebWorker or Node
 * types: code there may use these and nothing else of its host.
 */
declare const console: {
  debug(...data: unknown[]): void;
  info(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
  log(...data: unknown[]): void;
};
declare function setTimeout(handler: (...args: never[]) => void, timeout?: number): unknown;
declare function clearTimeout(id: unknown): void;
