// Benchmark: `ctr pull` from a local registry into a SIF vs the two-step pipeline
// (`skopeo copy` to an OCI layout, `umoci unpack --rootless`, `mksquashfs` zstd level 3),
// on a ~100 MB image in three layers (incompressible and compressible data, many small
// files). Cold runs start from an empty blob cache; the warm run is a second ctr pull with
// the cache filled. Median of RUNS; prints a Markdown table.
//
//   node dist/bench/pull.js [RUNS=3]
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBusyboxTree } from '../test/helpers/images.js';
import { push, startRegistry } from '../test/oci/fixtures.js';

const CTR = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function makeImage(work: string): Promise<string> {
  const L = join(work, 'layout');
  const B = join(work, 'bundle');
  const u = (args: string[]) => execa('umoci', args);
  await u(['init', '--layout', L]);
  await u(['new', '--image', `${L}:base`]);
  await u(['unpack', '--rootless', '--image', `${L}:base`, B]);
  const root = join(B, 'rootfs');
  await makeBusyboxTree(root);
  await mkdir(join(root, 'data'), { recursive: true });
  await writeFile(join(root, 'data/random1.bin'), randomBytes(40 << 20));
  await u(['repack', '--image', `${L}:l1`, B]);
  let text = '';
  for (let i = 0; text.length < 40 << 20; i++) text += `line ${i}: the quick brown fox jumps over the lazy dog ${i % 97}\n`;
  await writeFile(join(root, 'data/text.log'), text);
  await mkdir(join(root, 'data/small'), { recursive: true });
  for (let i = 0; i < 3000; i++) await writeFile(join(root, `data/small/f${i}.txt`), `small file ${i}\n`.repeat(1 + (i % 50)));
  await u(['repack', '--image', `${L}:l2`, B]);
  await writeFile(join(root, 'data/random2.bin'), randomBytes(20 << 20));
  await u(['repack', '--image', `${L}:img`, B]);
  await rm(B, { recursive: true, force: true });
  return L;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const work = await mkdtemp(join(os.tmpdir(), 'ctr-bench-pull-'));
  const reg = await startRegistry();
  try {
    process.stderr.write('making the image...\n');
    const L = await makeImage(work);
    await push(L, 'img', `${reg.host}/bench:img`);
    const ref = `${reg.host}/bench:img`;
    const ctrCold: number[] = [], ctrWarm: number[] = [], twoStep: number[] = [];
    for (let r = 0; r < runs; r++) {
      const cache = join(work, `cache${r}`);
      const sif = join(work, `out${r}.sif`);
      const env = { ...process.env, XDG_CACHE_HOME: cache, CTR_QUIET: '1' };
      ctrCold.push(await timed(() => execa(process.execPath, [CTR, 'pull', '--no-https', sif, `docker://${ref}`], { env })));
      ctrWarm.push(await timed(() => execa(process.execPath, [CTR, 'pull', '--no-https', '--force', sif, `docker://${ref}`], { env })));
      const lay = join(work, `lay${r}`), bundle = join(work, `bundle${r}`), sq = join(work, `out${r}.sqfs`);
      twoStep.push(await timed(async () => {
        await execa('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${lay}:img`]);
        await execa('umoci', ['unpack', '--rootless', '--image', `${lay}:img`, bundle]);
        await execa('mksquashfs', [join(bundle, 'rootfs'), sq, '-comp', 'zstd', '-Xcompression-level', '3', '-all-root', '-noappend', '-quiet', '-no-progress']);
      }));
      await rm(lay, { recursive: true, force: true });
      await rm(bundle, { recursive: true, force: true });
      process.stderr.write(`run ${r + 1}/${runs}: ctr ${ctrCold[r].toFixed(2)} s, ctr cached ${ctrWarm[r].toFixed(2)} s, skopeo+umoci+mksquashfs ${twoStep[r].toFixed(2)} s\n`);
    }
    const { stdout } = await execa('du', ['-sb', join(L, 'blobs')]);
    console.log(`\nImage: ${(Number(stdout.split('\t')[0]) / 1e6).toFixed(0)} MB compressed (3 layers), ${os.availableParallelism()} CPUs, median of ${runs}\n`);
    console.log('| pipeline | wall time (s) |');
    console.log('| --- | --- |');
    console.log(`| ctr pull → SIF (cold cache) | ${median(ctrCold).toFixed(2)} |`);
    console.log(`| ctr pull → SIF (blobs cached) | ${median(ctrWarm).toFixed(2)} |`);
    console.log(`| skopeo copy + umoci unpack + mksquashfs | ${median(twoStep).toFixed(2)} |`);
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1; });
