import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { catalogItem, checkCatalog } from '../protocol/catalog.js';
import { demoCatalog, demoItem } from './demo-catalog.js';

describe('demoCatalog', () => {
  it("lists the model's items most popular first, each a valid catalogue entry", () => {
    const items = demoCatalog({ itemIds: ['', 'x', 'y', 'z', 'w'], popular: [3, 1] });
    expect(items.map((item) => item.id)).toEqual(['z', 'x', 'y', 'w']);
    const checked = items.map((item, i) => catalogItem(item, `item ${i + 1}`));
    expect(checked).toEqual(items);
    expect(checkCatalog(checked, ['1', '2', '3', '4'], 'demo')).toHaveLength(4);
  });

  it('gives an id the same generated title and category every time', () => {
    expect(demoItem('p-001')).toEqual(demoItem('p-001'));
    expect(demoItem('p-001').title).toMatch(/^\w+ \w+ [\w ]+$/);
    expect(demoItem('p-001').url).toBe('/#item-p-001');
  });

  it("gives every item its category's cover, a file the demo ships", () => {
    const covers = new Set(
      demoCatalog({
        itemIds: ['', ...Array.from({ length: 200 }, (_, i) => `p-${i}`)],
        popular: [],
      }).map((item) => item.image!),
    );
    expect(covers.size).toBe(8);
    for (const cover of covers)
      expect(existsSync(join(import.meta.dirname, '..', 'public', cover))).toBe(true);
  });
});
