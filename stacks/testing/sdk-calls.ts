import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** One AWS SDK command a module sends: `client-sns:Publish` from `new PublishCommand(` in `file`. */
export interface SdkCall {
  readonly call: string;
  readonly file: string;
}

const SDK_CLIENT = /^@aws-sdk\/(client-[a-z0-9-]+)$/;

function scanFile(file: string): { imports: string[]; calls: SdkCall[] } {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const imports: string[] = [];
  const commands = new Map<string, string>();
  const calls: SdkCall[] = [];
  const addRelative = (specifier: string) => {
    if (!specifier.startsWith('.')) return;
    const resolved = path.resolve(path.dirname(file), specifier);
    if (existsSync(resolved)) imports.push(resolved);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const specifier = node.moduleSpecifier.text;
      const client = SDK_CLIENT.exec(specifier)?.[1];
      const bindings = node.importClause?.namedBindings;
      if (client && bindings && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) {
          const name = element.name.text;
          if (name.endsWith('Command')) commands.set(name, `${client}:${name.slice(0, -'Command'.length)}`);
        }
      }
      if (!node.importClause?.isTypeOnly) addRelative(specifier);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      addRelative(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      addRelative(node.arguments[0].text);
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression)) {
      const call = commands.get(node.expression.text);
      if (call) calls.push({ call, file });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { imports, calls };
}

/** Every SDK command sent by the modules reachable from the entry points through value imports. */
export function sdkCallsFrom(root: string, entryPoints: readonly string[]): SdkCall[] {
  const seen = new Set<string>();
  const queue = entryPoints.map((e) => path.resolve(root, e));
  const calls: SdkCall[] = [];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file) || !file.endsWith('.ts') || /\.(test|bench)\.ts$/.test(file)) continue;
    seen.add(file);
    const scanned = scanFile(file);
    calls.push(...scanned.calls.map((c) => ({ ...c, file: path.relative(root, c.file) })));
    queue.push(...scanned.imports);
  }
  return calls;
}
