/**
 * CPU time read from /proc (Linux only), to say where a benchmark's time goes: in the server under
 * test, or in Postgres. Elsewhere every reading is null.
 */
import { readdirSync, readFileSync } from 'node:fs';

const MICROSECONDS_PER_TICK = 1e6 / 100; // USER_HZ is 100 on Linux

/** User and system CPU time of a process so far, all its threads, in µs; null when unreadable. */
export function processCpu(pid) {
  try {
    // The fields after the command name (which may hold spaces) start at state, the 3rd field.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * MICROSECONDS_PER_TICK;
  } catch {
    return null;
  }
}

/** The CPU time so far of each process named `postgres` (server and backends), by pid, in µs. */
export function postgresCpu() {
  const byPid = new Map();
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue; // the process ended meanwhile
    }
    const cpu = processCpu(pid);
    if (cpu !== null) byPid.set(pid, cpu);
  }
  return byPid;
}

/** Starts a reading; calling what it returns gives the CPU µs spent since by `pid` and by Postgres. */
export function readCpu(pid) {
  const server = processCpu(pid);
  const postgres = postgresCpu();
  return () => {
    const serverNow = processCpu(pid);
    const postgresNow = postgresCpu();
    // Per backend: one that ended meanwhile (an idle connection closed) took its total with it.
    let postgresSpent = null;
    if (postgres && postgresNow) {
      postgresSpent = 0;
      for (const [backend, cpu] of postgresNow) postgresSpent += cpu - (postgres.get(backend) ?? 0);
    }
    return { server: server === null || serverNow === null ? null : serverNow - server, postgres: postgresSpent };
  };
}
