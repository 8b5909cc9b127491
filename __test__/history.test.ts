/**
 * Issue 15: a bounded history check, the Jepsen/Elle idea at the size of a CI run. Two server
 * processes on one database — a Postgres cluster of the test's own (the embedded one), restarted
 * once midway — behind a proxy that drops the connection right after COMMIT now and then.
 * Clients transfer money between accounts and claim names (insert-if-absent) on both processes;
 * a subscriber on each process records every state it is shown. Then the recorded history is
 * checked: no acknowledged transfer lost or doubled, no phantom one, one row per claimed name with
 * every claimant told the same id, and no subscriber ever shown a state that cannot exist (the
 * total changed, or a balance below zero).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type EmbeddedDatabase, startEmbedded } from '../src/cli/embedded.js';
import { ConvoyClient } from '../src/client/index.js';
import { type ConvoyServer, startConvoy } from '../src/server/runtime.js';
import { type CommitDroppingProxy, startCommitDroppingProxy } from './helpers/commit-dropping-proxy.js';
import { createExistingTables } from './helpers/fixture.js';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'behaviour-app');
const ACCOUNTS = 5;
const OPENING = 100;
const TRANSFERS_PER_CLIENT = 40;
const CLIENTS = 4;
const NAMES = 8;
const CLAIMS_PER_NAME = 4;

let dir: string;
let postgres: EmbeddedDatabase;
let proxy: CommitDroppingProxy;
const servers: ConvoyServer[] = [];
const clients: ConvoyClient[] = [];

interface Transfer {
  from: string;
  to: string;
  amount: number;
  outcome: 'moved' | 'refused' | 'unknown';
}

const random = (n: number) => Math.floor(Math.random() * n);
const account = (i: number) => `acct-${i}`;

describe('a bounded history check: transfers and claims across two processes, with faults', {
  timeout: 180_000,
}, () => {
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'convoy-history-'));
    postgres = await startEmbedded(dir, () => {});
    await createExistingTables({ query } as never);
    proxy = await startCommitDroppingProxy({ host: '127.0.0.1', port: Number(new URL(postgres.url).port) });
    for (const dev of [true, false]) {
      servers.push(
        await startConvoy({
          appDir,
          databaseUrl: proxy.url(postgres.url),
          port: 0,
          dev,
          syncSchema: dev,
          log: () => {},
        }),
      );
    }
  });

  after(async () => {
    for (const client of clients) client.close();
    for (const server of servers) await server.stop();
    await proxy?.close();
    await postgres?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('no lost, doubled or phantom write, and no subscriber shown a state that never existed', async () => {
    const [a, b] = servers as [ConvoyServer, ConvoyServer];
    const setup = new ConvoyClient(a.url);
    clients.push(setup);
    for (let i = 0; i < ACCOUNTS; i++) {
      await setup.mutation({ path: 'counters:create' } as never, { name: account(i) } as never);
    }
    const relational = await isRelational();
    await query(
      `UPDATE counters SET ${relational ? `value = ${OPENING}` : `data = jsonb_set(data, '{value}', '${OPENING}')`}`,
    );

    // A subscriber on each process, recording every state it is shown.
    const shown: Array<Record<string, number>> = [];
    for (const server of servers) {
      const subscriber = new ConvoyClient(server.url);
      clients.push(subscriber);
      subscriber.subscribe({ path: 'history:balances' } as never, {} as never, (value) => {
        shown.push(value as Record<string, number>);
      });
    }

    // Faults while the clients work: dropped COMMIT answers, and Postgres restarted once.
    let faulting = true;
    let restarted = false;
    const faults = (async () => {
      let round = 0;
      while (faulting) {
        proxy.arm();
        await new Promise((resolve) => setTimeout(resolve, 120));
        if (++round === 10) {
          await postgres.stop();
          postgres = await startEmbedded(dir, () => {});
          restarted = true;
        }
      }
    })();

    const transfers: Transfer[] = [];
    const errors: string[] = [];
    const claims: Array<{ name: string; id: string | null }> = [];
    const workers = Array.from({ length: CLIENTS }, async (_, w) => {
      // Half the clients call A, half B.
      const client = new ConvoyClient(w % 2 === 0 ? a.url : b.url);
      clients.push(client);
      for (let i = 0; i < TRANSFERS_PER_CLIENT; i++) {
        const from = random(ACCOUNTS);
        const to = (from + 1 + random(ACCOUNTS - 1)) % ACCOUNTS;
        const transfer: Transfer = { from: account(from), to: account(to), amount: 1 + random(30), outcome: 'unknown' };
        try {
          const { from: source, to: target, amount } = transfer;
          const moved = await client.mutation(
            { path: 'history:transfer' } as never,
            { from: source, to: target, amount } as never,
          );
          transfer.outcome = moved ? 'moved' : 'refused';
        } catch (error) {
          // Still unknown after the client's retries.
          errors.push(String(error));
        }
        transfers.push(transfer);
        if (i % 5 === 0) claims.push(await claim(client, `name-${random(NAMES)}`));
      }
    });
    const claimers = Array.from({ length: NAMES * CLAIMS_PER_NAME }, async (_, i) => {
      const client = new ConvoyClient(i % 2 === 0 ? a.url : b.url);
      clients.push(client);
      claims.push(await claim(client, `name-${i % NAMES}`));
    });
    await Promise.all([...workers, ...claimers]);
    faulting = false;
    await faults;

    // The final state, read from Postgres itself.
    const final = await balancesInDatabase();
    const total = Object.values(final).reduce((sum, value) => sum + value, 0);
    assert.equal(total, ACCOUNTS * OPENING, 'money was made or lost');

    // Acknowledged transfers, each applied exactly once; unknown ones either applied or not.
    const expected = Object.fromEntries(Array.from({ length: ACCOUNTS }, (_, i) => [account(i), OPENING]));
    for (const transfer of transfers.filter((t) => t.outcome === 'moved')) {
      expected[transfer.from] = (expected[transfer.from] ?? 0) - transfer.amount;
      expected[transfer.to] = (expected[transfer.to] ?? 0) + transfer.amount;
    }
    const unknown = transfers.filter((t) => t.outcome === 'unknown');
    assert.ok(
      unknown.length <= 12,
      `${unknown.length} transfers left unknown after the client's retries: ${[...new Set(errors)].join('; ')}`,
    );
    const explained = Array.from({ length: 2 ** unknown.length }).some((_, mask) => {
      const candidate = { ...expected };
      unknown.forEach((transfer, i) => {
        if (mask & (1 << i)) {
          candidate[transfer.from] = (candidate[transfer.from] ?? 0) - transfer.amount;
          candidate[transfer.to] = (candidate[transfer.to] ?? 0) + transfer.amount;
        }
      });
      return Object.keys(candidate).every((name) => candidate[name] === final[name]);
    });
    assert.ok(explained, `final balances ${JSON.stringify(final)} are not the acknowledged transfers applied once`);

    // Claims: one row per name, and everyone told the same id.
    const rows = await query('SELECT count(*)::int AS n FROM counters');
    const claimedNames = new Set(claims.map((claim) => claim.name));
    assert.equal(rows[0].n, ACCOUNTS + claimedNames.size, 'one row per claimed name');
    for (const name of claimedNames) {
      const ids = new Set(claims.filter((claim) => claim.name === name && claim.id).map((claim) => claim.id));
      assert.ok(ids.size <= 1, `${name} was claimed under ${ids.size} ids`);
    }

    // Every state shown to a subscriber could exist.
    for (const state of shown) {
      const sum = Object.values(state).reduce((acc, value) => acc + value, 0);
      if (Object.keys(state).length === ACCOUNTS) {
        assert.equal(sum, ACCOUNTS * OPENING, `a subscriber was shown ${JSON.stringify(state)}`);
      }
      for (const value of Object.values(state))
        assert.ok(value >= 0, `a subscriber was shown ${JSON.stringify(state)}`);
    }
    // And each subscriber ends on the final state.
    const deadline = Date.now() + 10_000;
    for (const server of servers) {
      const reader = new ConvoyClient(server.url);
      clients.push(reader);
      for (;;) {
        const value = (await reader.query({ path: 'history:balances' } as never, {} as never)) as Record<
          string,
          number
        >;
        if (Object.keys(final).every((name) => value[name] === final[name])) break;
        assert.ok(Date.now() < deadline, 'a process never served the final state');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    assert.ok(restarted, 'Postgres was restarted during the run');
    console.log(
      `history: ${transfers.length} transfers (${transfers.filter((t) => t.outcome === 'moved').length} moved, ${transfers.filter((t) => t.outcome === 'refused').length} refused, ${unknown.length} unknown), ${claims.length} claims of ${claimedNames.size} names, ${proxy.dropped()} COMMIT answers dropped, ${shown.length} subscriber states checked`,
    );
  });
});

/** Claims `name`; the id the claimant was told, or null when it never learned one. */
async function claim(client: ConvoyClient, name: string): Promise<{ name: string; id: string | null }> {
  try {
    return { name, id: (await client.mutation({ path: 'history:claim' } as never, { name } as never)) as string };
  } catch {
    return { name, id: null };
  }
}

/** Runs `sql` on the cluster directly, on a connection of its own. */
async function query(sql: string): Promise<any[]> {
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function isRelational(): Promise<boolean> {
  const rows = await query(
    "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'counters' AND column_name = 'data'",
  );
  return rows[0].n === 0;
}

async function balancesInDatabase(): Promise<Record<string, number>> {
  const relational = await isRelational();
  const rows = await query(
    relational
      ? "SELECT name, value FROM counters WHERE name LIKE 'acct-%'"
      : "SELECT data->>'name' AS name, (data->>'value')::int AS value FROM counters WHERE data->>'name' LIKE 'acct-%'",
  );
  return Object.fromEntries(rows.map((row: any) => [row.name, Number(row.value)]));
}
