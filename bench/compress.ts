// Which compressor should `ctr build` use by default? Builds two images with each candidate
// and measures what a user pays for each: image size, build time, and cold start-up
// through ctr's launcher (a plan file: every launch is a fresh FUSE mount, so nothing is
// decompressed yet; the host page cache holds the image file, as after a first run).
//
//   debian  a Debian-ish tree of a few hundred MB copied from the host: /usr/lib/x86_64-linux-gnu
//           (shared libraries up to 8 MB), /usr/bin (programs up to 4 MB, plus python3.11
//           and whatever it and the shell need), python3's stdlib /usr/lib/python3.11
//   busybox images/busybox.def
//
// Workloads, run as an unprivileged user (BENCH_USER, default ctrtest, when run as root):
//   true     /bin/true: mount + exec, start-up proper
//   import   python3 -c 'import email, json, http.client, xml.dom.minidom' (debian)
//   cat-py   cat every .py file of the stdlib (debian): file-heavy cold read
//
//   node dist/bench/compress.js [--rounds N] [--build-rounds N] [--only zstd-3,lz4]
// Work files stay in BENCH_WORK (default /var/tmp/ctr-bench-compress) for reuse.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { hostname, availableParallelism } from 'node:os';
import path from 'node:path';
import { measure, REPO, save, sh, type Contender, type Row } from './lib.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
};
const rounds = Number(arg('--rounds', process.env.BENCH_ROUNDS ?? '10'));
const buildRounds = Number(arg('--build-rounds', '2'));
const work = process.env.BENCH_WORK ?? '/var/tmp/ctr-bench-compress';
const user = process.getuid?.() === 0 ? (process.env.BENCH_USER ?? 'ctrtest') : undefined;
const asUser = (cmd: string[]) => (user ? ['runuser', '-u', user, '--', ...cmd] : cmd);
const ctr = [process.execPath, path.join(REPO, 'dist/src/cli/main.js')];

interface Codec { name: string; spec: string }
const ALL: Codec[] = [
  { name: 'gzip-9', spec: 'gzip:9' },
  { name: 'lz4', spec: 'lz4' },
  { name: 'zstd-3', spec: 'zstd:3' },
  { name: 'zstd-9', spec: 'zstd:9' },
  { name: 'zstd-19', spec: 'zstd:19' },
  { name: 'xz', spec: 'xz' },
];
const only = arg('--only', '');
const codecs = only ? ALL.filter((c) => only.split(',').includes(c.name)) : ALL;

const PY_IMPORT = 'import email, json, http.client, xml.dom.minidom';
const CAT_PY = 'find /usr/lib/python3.11 -type f -name "*.py" -exec cat {} + >/dev/null';

/** Copy `src` (a file, symlink or directory) to `dst`, keeping symlinks as symlinks; never through a symlink in `dst`. */
function copy(src: string, dst: string): void {
  if (fs.lstatSync(dst, { throwIfNoEntry: false })) return;
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const st = fs.lstatSync(src);
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
  else if (st.isDirectory()) fs.cpSync(src, dst, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  else {
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, st.mode & 0o7777);
    fs.utimesSync(dst, st.atime, st.mtime);
  }
}

/** Top-level entries of `dir` up to `maxBytes` (symlinks always), copied to tree/`dir`. */
function copyTop(tree: string, dir: string, maxBytes: number, match: RegExp = /./): void {
  for (const name of fs.readdirSync(dir)) {
    if (!match.test(name)) continue;
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink() || (st.isFile() && st.size <= maxBytes)) copy(p, path.join(tree, p));
  }
}

/** `p` with its directory resolved (/lib/x → /usr/lib/x on a merged-/usr host), the name kept. */
const canonical = (p: string) => path.join(fs.realpathSync(path.dirname(p)), path.basename(p));

/** The libraries `bin` needs (ldd), copied along with the files their symlinks point to. */
function copyDeps(tree: string, bin: string): void {
  for (const m of sh(['ldd', bin]).matchAll(/(\/\S+) \(0x/g)) {
    const lib = canonical(m[1]);
    copy(lib, path.join(tree, lib));
    const real = fs.realpathSync(lib);
    if (real !== lib) copy(real, path.join(tree, real));
  }
}

function debianTree(): string {
  const tree = path.join(work, 'debian.dir');
  if (fs.existsSync(path.join(tree, '.complete'))) return tree;
  fs.rmSync(tree, { recursive: true, force: true });
  process.stderr.write(`copying a Debian-ish tree to ${tree}...\n`);
  fs.mkdirSync(tree, { recursive: true });
  fs.chmodSync(tree, 0o755);
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) {
    if (fs.lstatSync(`/${l}`, { throwIfNoEntry: false })?.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(`/${l}`), path.join(tree, l));
  }
  copyTop(tree, '/usr/lib/x86_64-linux-gnu', 8 << 20, /\.so(\.|$)/);
  copyTop(tree, '/usr/bin', 4 << 20);
  if (fs.existsSync('/usr/lib64')) copyTop(tree, '/usr/lib64', 8 << 20);
  copy('/usr/lib/python3.11', path.join(tree, 'usr/lib/python3.11'));
  for (const bin of ['/usr/bin/python3.11', '/usr/bin/dash', '/usr/bin/find', '/usr/bin/cat', '/usr/bin/true']) {
    copy(bin, path.join(tree, bin));
    copyDeps(tree, bin);
  }
  for (const d of ['etc', 'tmp', 'proc', 'dev', 'sys', 'home', 'root', 'var/tmp']) fs.mkdirSync(path.join(tree, d), { recursive: true });
  fs.writeFileSync(path.join(tree, '.complete'), '');
  return tree;
}

function treeBytes(dir: string): number {
  return Number(sh(['du', '-sb', '--exclude=.complete', dir]).split('\t')[0]);
}

interface Image { name: string; source: string; workloads: { name: string; cmd: string[] }[] }

function images(): Image[] {
  return [
    {
      name: 'debian', source: debianTree(), workloads: [
        { name: 'true', cmd: ['/bin/true'] },
        { name: 'import', cmd: ['/usr/bin/python3.11', '-c', PY_IMPORT] },
        { name: 'cat-py', cmd: ['/bin/sh', '-c', CAT_PY] },
      ],
    },
    { name: 'busybox', source: path.join(REPO, 'images/busybox.def'), workloads: [{ name: 'true', cmd: ['/bin/true'] }] },
  ];
}

const sif = (img: Image, c: Codec) => path.join(work, `${img.name}-${c.name}.sif`);

/** Build every image with every codec, interleaved; returns wall seconds by image and codec. */
function buildAll(imgs: Image[]): Map<string, number[]> {
  const times = new Map<string, number[]>();
  for (let r = 0; r < buildRounds; r++) {
    for (const img of imgs) {
      for (const c of codecs) {
        const out = sif(img, c);
        fs.rmSync(out, { force: true });
        const t0 = process.hrtime.bigint();
        const b = spawnSync(ctr[0], [...ctr.slice(1), 'build', '--compress', c.spec, out, img.source], { cwd: work, encoding: 'utf8' });
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        if (b.status !== 0) throw new Error(`ctr build ${c.spec} ${img.source}: ${b.stderr}`);
        fs.chmodSync(out, 0o644);
        const key = `${img.name}/${c.name}`;
        times.set(key, [...(times.get(key) ?? []), s]);
        process.stderr.write(`build ${r + 1}/${buildRounds} ${key}: ${s.toFixed(1)} s, ${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB\n`);
      }
    }
  }
  return times;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b), m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function planFor(img: Image, c: Codec): string {
  const plan = path.join(work, `${img.name}-${c.name}-${user ?? 'self'}.plan`);
  sh(asUser([...ctr, 'plan', '-o', plan, sif(img, c)]), { cwd: work });
  return plan;
}

export async function compress(): Promise<string> {
  fs.mkdirSync(work, { recursive: true });
  fs.chmodSync(work, 0o777);
  const imgs = images();
  const builds = buildAll(imgs);
  const runtime = new Map<string, Row>();
  for (const img of imgs) {
    const plans = new Map(codecs.map((c) => [c.name, planFor(img, c)]));
    for (const w of img.workloads) {
      // Heavier workloads get fewer rounds; each round runs every codec once, in turn.
      const n = w.name === 'cat-py' ? Math.max(3, Math.ceil(rounds / 2)) : w.name === 'true' ? rounds * 2 : rounds;
      const contenders: Contender[] = codecs.map((c) => ({ name: c.name, cmd: asUser([plans.get(c.name)!, ...w.cmd]), cwd: work }));
      process.stderr.write(`measuring ${img.name} ${w.name} (${n} rounds)...\n`);
      for (const row of measure(contenders, n, 1)) runtime.set(`${img.name}/${w.name}/${row.name}`, row);
    }
  }

  const out: string[] = [];
  const host = `${hostname()}, ${availableParallelism()} CPUs, load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`;
  out.push(`### Compressors for ctr build (${host})`, '');
  out.push(`Medians; build: ${buildRounds} interleaved runs of \`ctr build --compress\` (128 KiB blocks, all CPUs); ` +
    `start-up: ${rounds}+ interleaved rounds of a plan file as ${user ?? 'the current user'}, each a fresh FUSE mount.`, '');
  const rows: Row[] = [];
  for (const img of imgs) {
    const srcMiB = img.name === 'debian' ? ` (tree ${(treeBytes(img.source) / 2 ** 20).toFixed(0)} MiB)` : '';
    out.push(`**${img.name}**${srcMiB}`, '');
    const ws = img.workloads.map((w) => w.name);
    out.push(`| compressor | image MiB | build s | ${ws.map((w) => `${w} ms`).join(' | ')} |`);
    out.push(`| --- | ---: | ---: | ${ws.map(() => '---:').join(' | ')} |`);
    for (const c of codecs) {
      const size = fs.statSync(sif(img, c)).size / 2 ** 20;
      const b = median(builds.get(`${img.name}/${c.name}`)!);
      const cells = ws.map((w) => runtime.get(`${img.name}/${w}/${c.name}`)!);
      out.push(`| ${c.name} | ${size.toFixed(1)} | ${b.toFixed(1)} | ${cells.map((r) => r.medianMs.toFixed(0)).join(' | ')} |`);
      for (const [i, r] of cells.entries()) rows.push({ ...r, name: `${img.name} ${ws[i]} ${c.name}` });
      rows.push({ name: `${img.name} build ${c.name}`, runs: buildRounds, medianMs: b * 1000, p10Ms: b * 1000, p90Ms: b * 1000 });
    }
    out.push('');
  }
  const flags = await save({ name: 'compress', date: new Date().toISOString(), host: hostname(), rows });
  return out.join('\n') + (flags.length ? '\n' + flags.map((f) => `- ${f}`).join('\n') + '\n' : '');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(await compress());
}
