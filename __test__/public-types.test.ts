/**
 * Every type that the package's entry points name is exported by one of them (failed on for the
 * root's modules, told for the client's, React's and the server's). A user's
 * TypeScript with `declaration: true` writes each inferred type of theirs into a declaration and
 * must name every interface, class or exported alias in it through an entry point: the generated
 * `server.ts` failed so on `QueryDefinition` and `FieldShape`, and every query returning documents
 * on `SystemFields` (TS2742 on 5.9, TS2883 on 7; issue 16). generated-types.test.ts compiles apps;
 * this walks the built declarations (dist/), so that a type added later cannot be left out.
 *
 * Aliases a module keeps to itself are not asked for: TypeScript writes out what they stand for.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { root } from './helpers/pack.js';

const dist = path.join(root, 'dist');
const entries = ['index.d.ts', 'client/index.d.ts', 'react/index.d.ts', 'server/index.d.ts'].map((file) =>
  path.join(dist, file),
);

/**
 * Folders whose unexported types only the generated entry (`http.js`) and the dashboard meet, not
 * a user's own declarations: what they leave out is told, not failed on. The client's and React's
 * are held to the rule (`QuerySuccessResult` was one a user meets: `return result.status ===
 * 'success' ? result : null` under declaration: true was TS2883).
 */
const toldOnly = ['server/', 'dashboard/'];

function forgottenTypes(): Set<string> {
  const program = ts.createProgram(entries, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const resolved = (symbol: ts.Symbol) =>
    symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  const ours = (declaration: ts.Node) => declaration.getSourceFile().fileName.startsWith(dist + path.sep);

  const exported = new Set<ts.Symbol>();
  for (const entry of entries) {
    const source = program.getSourceFile(entry);
    assert.ok(source, `${entry} is missing: run npm run build:ts`);
    const module = checker.getSymbolAtLocation(source);
    assert.ok(module, `${entry} is not a module`);
    for (const symbol of checker.getExportsOfModule(module)) exported.add(resolved(symbol));
  }

  /** An interface, class, enum, or an alias its module exports: a name TypeScript must reach. */
  const mustBeReachable = (symbol: ts.Symbol) => {
    if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class | ts.SymbolFlags.Enum)) return true;
    if (!(symbol.flags & ts.SymbolFlags.TypeAlias)) return false;
    return (symbol.declarations ?? []).some(
      (declaration) =>
        ts.canHaveModifiers(declaration) &&
        ts.getModifiers(declaration)?.some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword),
    );
  };

  const forgotten = new Set<string>();
  const seen = new Set<ts.Symbol>();
  const queue = [...exported];
  while (queue.length > 0) {
    const symbol = queue.pop()!;
    if (seen.has(symbol)) continue;
    seen.add(symbol);
    for (const declaration of symbol.declarations ?? []) {
      if (!ours(declaration)) continue;
      const visit = (node: ts.Node): void => {
        const name = ts.isTypeReferenceNode(node)
          ? node.typeName
          : ts.isExpressionWithTypeArguments(node)
            ? node.expression
            : ts.isTypeQueryNode(node)
              ? node.exprName
              : undefined;
        const named = name && checker.getSymbolAtLocation(name);
        if (named) {
          const target = resolved(named);
          const declarations = target.declarations ?? [];
          if (!(target.flags & ts.SymbolFlags.TypeParameter) && declarations.some(ours)) {
            if (!exported.has(target) && mustBeReachable(target)) {
              forgotten.add(`${target.name} (${path.relative(dist, declarations[0]!.getSourceFile().fileName)})`);
            }
            queue.push(target);
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(declaration);
    }
  }
  return forgotten;
}

test("every type the package's root names is exported by it (declaration: true names them)", (t) => {
  const forgotten = [...forgottenTypes()];
  const told = forgotten.filter((name) => toldOnly.some((folder) => name.includes(`(${folder}`)));
  for (const name of told) t.diagnostic(`exported by no entry point: ${name}`);
  const missing = forgotten.filter((name) => !told.includes(name));
  assert.deepEqual(missing, [], 'export these from src/index.ts');
});
