/**
 * The CLI as SPEC §9 has it: `--help` and `--version` print once; an unknown command, a missing
 * argument or an unknown option says so in a line, without a stack trace, and exits non-zero.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { convoy } from './helpers/production.js';

const run = (...args: string[]) => convoy(args, tmpdir(), { ...process.env, NO_COLOR: '1' });

describe('the convoy command', () => {
  test('--help and --version print once and exit 0', async () => {
    for (const args of [['--help'], ['graduate', '--help']]) {
      const { code, output } = await run(...args);
      assert.equal(code, 0, output);
      assert.equal(output.split('Usage:').length - 1, 1, output);
    }
    const version = await run('--version');
    assert.equal(version.code, 0);
    assert.equal(version.output.trim().split('\n').length, 1, version.output);
    assert.match(version.output, /^convoy\/\d+\.\d+\.\d+/);
  });

  test('an unknown command, a missing argument, an unknown option: one line, exit 1', async () => {
    for (const [args, message] of [
      [['frobnicate'], /unknown command frobnicate/],
      [['graduate'], /missing required args for command `graduate <table>`/],
      [['graduate', 'projects', '--bogus'], /Unknown option `--bogus`/],
    ] as const) {
      const { code, output } = await run(...args);
      assert.equal(code, 1, output);
      assert.match(output, message);
      assert.doesNotMatch(output, /\n\s+at /, 'no stack trace');
    }
  });
});
