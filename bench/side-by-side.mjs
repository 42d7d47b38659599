#!/usr/bin/env node
// Side-by-side benchmark: srflow (`srflow bench`, built CLI in dist/) against the PyTorch reference
// (bench/pytorch/srflow_torch.py, Debian's python3-torch), alternating the two sides for each
// workload, several rounds, 2 threads each. Prints a Markdown table of medians (over rounds of each
// side's own median) and the ratio srflow / PyTorch; --json prints every raw result.
//
//   node bench/side-by-side.mjs [--rounds 2] [--only NAME[,NAME]] [--json]
//
// Needs `npm install` (builds dist/) and `apt-get install -y python3-torch`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const rounds = Number(opt('rounds', '2'));
const only = opt('only', '')?.split(',').filter(Boolean) ?? [];
const wantJson = args.includes('--json');
const python = process.env.PYTHON ?? '/usr/bin/python3';

const workloads = [
  { name: 'infer-paper4x-64', args: ['infer', '--preset', 'paper4x', '--lr-size', '64', '--repeat', '2'] },
  { name: 'infer-paper4x-32', args: ['infer', '--preset', 'paper4x', '--lr-size', '32', '--repeat', '3'] },
  { name: 'train-paper4x-16x2', args: ['train', '--preset', 'paper4x', '--lr-size', '16', '--batch', '2', '--repeat', '3'] },
  { name: 'train-small4x-16x4', args: ['train', '--preset', 'small4x', '--lr-size', '16', '--batch', '4', '--repeat', '5'] },
  { name: 'train-default4x-16x8', args: ['train', '--preset', 'default4x', '--lr-size', '16', '--batch', '8', '--repeat', '3'] },
  { name: 'infer-paper4x-64-s8', args: ['infer', '--preset', 'paper4x', '--lr-size', '64', '--samples', '8', '--repeat', '1'] },
].filter((w) => only.length === 0 || only.includes(w.name));

function run(cmd, argv, env = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || !line) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr?.slice(-800)}`);
  return JSON.parse(line);
}

const sides = {
  srflow: (w) => run(process.execPath, ['--single-threaded-gc', join(root, 'dist/cli/index.js'), 'bench', ...w.args, '--threads', '2', '--json']),
  pytorch: (w) => run(python, [join(root, 'bench/pytorch/srflow_torch.py'), ...w.args, '--threads', '2', '--json']),
};

const results = [];
for (let r = 0; r < rounds; r++) {
  for (const w of workloads) {
    for (const side of r % 2 ? ['pytorch', 'srflow'] : ['srflow', 'pytorch']) {
      const res = sides[side](w);
      results.push({ round: r, workload: w.name, side, ...res });
      process.stderr.write(`round ${r + 1} ${w.name} ${side}: ${res.median_s} s, ${res.peak_rss_mib} MiB\n`);
    }
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
if (wantJson) {
  for (const r of results) console.log(JSON.stringify(r));
} else {
  console.log('| workload | srflow s | PyTorch s | time ratio | srflow MiB | PyTorch MiB | memory ratio |');
  console.log('|---|---|---|---|---|---|---|');
  for (const w of workloads) {
    const of = (side, key) => median(results.filter((x) => x.workload === w.name && x.side === side).map((x) => x[key]));
    const [ts, tp, ms, mp] = [of('srflow', 'median_s'), of('pytorch', 'median_s'), of('srflow', 'peak_rss_mib'), of('pytorch', 'peak_rss_mib')];
    console.log(
      `| ${w.name} | ${ts.toFixed(3)} | ${tp.toFixed(3)} | ${(ts / tp).toFixed(2)} | ${ms.toFixed(0)} | ${mp.toFixed(0)} | ${(ms / mp).toFixed(2)} |`,
    );
  }
}
