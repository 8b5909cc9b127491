/** A function called over HTTP as any client calls it, expected to answer 200. */
import assert from 'node:assert/strict';

export async function callOk(base: string, kind: 'query' | 'mutation', name: string, args: unknown): Promise<any> {
  const response = await fetch(`${base}/api/${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: name, args }),
  });
  const body = (await response.json()) as any;
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.value;
}

/** The query runs a server has made so far, as `/metrics` counts them. */
export async function queryRuns(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith('convoy_function_executions_total{kind="query"} '));
  assert.ok(line, 'query executions in /metrics');
  return Number(line.split(' ')[1]);
}
