/**
 * The command a mistyped one most likely meant (`dve` → `dev`). Edit distance counting a swap of
 * two neighbours as one edit (optimal string alignment), since swaps are the commonest typo and
 * plain Levenshtein counts them as two; twenty lines, so no dependency.
 */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[a.length]![b.length]!;
}

/** The nearest of `commands` to `typed`, or undefined when none is near (at most a third of it differs). */
export function nearestCommand(typed: string, commands: string[]): string | undefined {
  let best: { command: string; distance: number } | undefined;
  for (const command of commands) {
    const d = distance(typed.toLowerCase(), command);
    if (!best || d < best.distance) best = { command, distance: d };
  }
  return best && best.distance <= Math.max(1, Math.floor(Math.max(typed.length, best.command.length) / 3))
    ? best.command
    : undefined;
}
