/**
 * The storage the suites run on (the matrix of issue 12): documents, or — with
 * `CONVOY_TEST_STORAGE=relational` — every managed table of their apps declared `.relational()`.
 * What a test writes in SQL of its own must name a field as that storage keeps it.
 */
export const relational = process.env.CONVOY_TEST_STORAGE === 'relational';

/** A field of a managed table as SQL text: `data->>'text'`, or the column `text`. */
export function fieldText(field: string): string {
  if (!relational) return `data->>'${field}'`;
  return field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}
