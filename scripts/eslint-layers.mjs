// ESLint rule `srflow/layers`: a module under src/ imports only from its own layer's folder and from
// lower layers (docs/ARCHITECTURE.md). Static imports, `export … from` and `import('…')` all count,
// `import type` too: a type is a dependency as well.
import { dirname, relative, resolve, sep } from 'node:path';

const SRC = resolve(import.meta.dirname, '..', 'src');

/**
 * The layers of src/, lowest first: each entry is a folder (or a file at src/'s top, without its
 * extension). A module may import a module of a lower rank, never one of its own rank in another
 * folder (peers stay independent) or of a higher rank.
 */
export const LAYERS = [
  ['errors'], // shared error types: importable from anywhere
  ['is'], // the validation vocabulary (src/is.ts)
  ['engine-options'], // EngineOptions, its checks and parsing
  ['env'], // the process environment: the one file that reads process.env
  ['kernels', 'io'],
  ['tensor'],
  ['flow', 'data'],
  ['models', 'metrics'],
  ['upscale', 'train', 'registry'],
  ['edit', 'serve', 'bench'],
  ['cli'],
  ['index'], // the package's public surface
];

const RANK = new Map(LAYERS.flatMap((names, rank) => names.map((n) => [n, rank])));

/** The layer of a path under src/ ({ name, rank }, rank undefined if it is in no layer), or null outside src/. */
function layerOf(path) {
  const rel = relative(SRC, path);
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return null;
  const name = rel.split(sep)[0].replace(/\.[cm]?[jt]s$/, '');
  return { name, rank: RANK.get(name) };
}

const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'src/ layers import only lower layers (docs/ARCHITECTURE.md)' },
    schema: [],
    messages: {
      upward: 'src/{{from}} must not import src/{{to}}: {{to}} is {{how}} layer (docs/ARCHITECTURE.md); move the shared code down to a layer both can import',
      unknown: 'src/{{name}} is in no layer: add it to LAYERS in scripts/eslint-layers.mjs',
    },
  },
  create(context) {
    const from = layerOf(context.filename);
    if (!from) return {};
    const check = (node) => {
      if (!node || node.type !== 'Literal' || typeof node.value !== 'string' || !node.value.startsWith('.')) return;
      const to = layerOf(resolve(dirname(context.filename), node.value));
      if (!to || to.name === from.name) return;
      if (to.rank === undefined) context.report({ node, messageId: 'unknown', data: { name: to.name } });
      else if (from.rank !== undefined && to.rank >= from.rank) {
        const how = to.rank > from.rank ? 'a higher' : 'a peer';
        context.report({ node, messageId: 'upward', data: { from: from.name, to: to.name, how } });
      }
    };
    return {
      Program(node) {
        if (from.rank === undefined) context.report({ node, messageId: 'unknown', data: { name: from.name } });
      },
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
    };
  },
};

export default { rules: { layers: layersRule } };
