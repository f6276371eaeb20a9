// The built-in FUSE server (native/launch_fuse.c) takes shortcuts for speed: opens and
// directory opens answered without a handle (the kernel then caches pages and listings),
// listings that carry every entry's attributes (READDIRPLUS), and "no xattrs here" said
// once for an image without any. Whatever it answers, the container must see exactly
// what the image holds. A walk inside the container (the host's Python, bound in at
// /usr) records every entry's type, mode, size, mtime, link count, hard-link group, link
// target, content digest and xattrs; it must equal the same walk over the source tree,
// on the first pass (fresh mount) and the second (served from the kernel's caches), with
// a directory too big for one listing, and with squashfuse_ll as a cross-check.
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cached } from '../helpers/images.js';
import { killUserProcesses, leftovers } from '../helpers/leftovers.js';
import { ctr, userTmp } from '../helpers/user.js';

const WALK = `
import hashlib, json, os, stat, sys
root, passes, probe = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def walk():
    out, groups = [], {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            e = {'path': os.path.relpath(p, root), 'mode': oct(st.st_mode), 'mtime': int(st.st_mtime)}
            if not stat.S_ISDIR(st.st_mode):
                e['size'], e['nlink'] = st.st_size, st.st_nlink
                e['group'] = groups.setdefault(st.st_ino, e['path'])
            if stat.S_ISLNK(st.st_mode):
                e['target'] = os.readlink(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, 'rb') as f:
                    e['sha256'] = hashlib.sha256(f.read()).hexdigest()
            try:
                e['xattrs'] = {k: os.getxattr(p, k, follow_symlinks=False).hex() for k in sorted(os.listxattr(p, follow_symlinks=False))}
            except OSError as err:
                e['xattrs'] = 'error %d' % err.errno
            out.append(e)
    return out
for _ in range(passes):
    print(json.dumps(walk()))
try:
    print(json.dumps(os.getxattr(probe, 'user.ctr-probe').hex()))
except OSError as err:
    print(json.dumps('error %d' % err.errno))
`;

const BIG_DIR_FILES = 2500;

/** The content tree: every kind of entry the server answers for, and one big directory. */
async function makeData(dir: string, xattrs: boolean): Promise<void> {
  const data = join(dir, 'data');
  await mkdir(join(data, 'big'), { recursive: true });
  // 2,500 entries with 150-character names: some 30 listing buffers, each resumed at
  // the offset the previous one ended on.
  for (let i = 0; i < BIG_DIR_FILES; i++) await writeFile(join(data, 'big', `${String(i).padStart(5, '0')}-${'n'.repeat(144)}`), `entry ${i}\n`);
  await mkdir(join(data, 'files'));
  let seed = 7;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed & 0xff;
  }));
  for (const n of [0, 1, 4095, 4096, 131072 + 7, 3 * 1024 * 1024 + 3]) await writeFile(join(data, 'files', `size-${n}`), bytes(n));
  await writeFile(join(data, 'files', 'ro'), 'read only\n');
  await chmod(join(data, 'files', 'ro'), 0o444);
  await writeFile(join(data, 'files', 'setuid'), 'kept as data\n');
  await chmod(join(data, 'files', 'setuid'), 0o4755);
  await link(join(data, 'files', 'size-4096'), join(data, 'files', 'hardlink'));
  await symlink('size-1', join(data, 'files', 'symlink'));
  await symlink('/nowhere', join(data, 'files', 'dangling'));
  await mkdir(join(data, 'empty'));
  await mkdir(join(data, 'a/b/c/d'), { recursive: true });
  await writeFile(join(data, 'a/b/c/d/deep'), 'deep\n');
  await execa('mkfifo', [join(data, 'fifo')]);
  if (xattrs) {
    await execa('setfattr', ['-n', 'user.ctr-probe', '-v', 'hello', join(data, 'files', 'size-1')]);
    await execa('setfattr', ['-n', 'user.other', '-v', '0x00ff10', join(data, 'a')]);
  }
}

/** The source tree: the content under data/, and mount points for the host's /usr
 * (Debian's merged /usr) beside it. The image is made from it, so times agree. */
function source(xattrs: boolean): Promise<string> {
  return cached(`fuse-${xattrs ? 'xattrs' : 'plain'}.src`, async (tmp) => {
    await mkdir(join(tmp, 'usr'), { recursive: true });
    for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev']) await mkdir(join(tmp, d));
    for (const l of ['bin', 'lib', 'lib64']) await symlink(`usr/${l}`, join(tmp, l));
    await makeData(tmp, xattrs);
  });
}

function image(xattrs: boolean): Promise<string> {
  return cached(`fuse-${xattrs ? 'xattrs' : 'plain'}.sqfs`, async (tmp) => {
    await execa('mksquashfs', [await source(xattrs), tmp, '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress',
      ...(xattrs ? ['-xattrs'] : ['-no-xattrs'])]);
    await chmod(tmp, 0o644);
  });
}

interface Walk { passes: unknown[][]; probe: string }

async function walkIn(img: string, env: Record<string, string> = {}): Promise<Walk> {
  const work = await userTmp('ctr-fuse-');
  const r = await ctr(['exec', '-B', '/usr', '--pwd', '/', img, '/usr/bin/python3', '-c', WALK, '/data', '2', '/data/files/size-1'],
    { cwd: work, env });
  assert.is(r.stderr, '', `walk inside ${img}`);
  assert.is(r.exitCode, 0);
  const lines = String(r.stdout).trim().split('\n').map((l) => JSON.parse(l));
  return { passes: lines.slice(0, 2), probe: lines[2] };
}

async function walkHost(src: string): Promise<Walk> {
  const r = await execa('/usr/bin/python3', ['-c', WALK, join(src, 'data'), '1', join(src, 'data/files/size-1')]);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  return { passes: lines.slice(0, 1), probe: lines[1] };
}

const Fuse = suite('FUSE server');
Fuse.after.each(async () => {
  const left = await leftovers();
  await killUserProcesses();
  assert.equal(left, [], 'processes left behind');
});

for (const xattrs of [true, false]) {
  for (const server of ['built in', 'squashfuse_ll'] as const) {
    const what = xattrs ? 'with xattrs' : 'without xattrs';
    Fuse(`same tree :: image ${what}, ${server}: a walk inside equals the source's, fresh and cached`, async () => {
      const img = await image(xattrs);
      const host = await walkHost(await source(xattrs));
      assert.is((host.passes[0] as Array<{ path: string }>).filter((e) => e.path.startsWith('big/')).length, BIG_DIR_FILES);
      const inside = await walkIn(img, server === 'squashfuse_ll' ? { CTR_FUSE: 'exec' } : {});
      assert.equal(inside.passes[0], host.passes[0], 'first pass, fresh mount');
      assert.equal(inside.passes[1], host.passes[0], 'second pass, from the kernel caches');
      if (xattrs) {
        assert.is(inside.probe, Buffer.from('hello').toString('hex'), 'an xattr read by name');
      } else {
        // Host ext4 has no such attribute (ENODATA, 61). The built-in server says the image
        // has no xattrs at all: "not supported" (EOPNOTSUPP, 95), as tmpfs without xattrs does.
        assert.is(host.probe, 'error 61');
        assert.ok(['error 61', 'error 95'].includes(inside.probe), inside.probe);
        if (server === 'built in') assert.is(inside.probe, 'error 95');
      }
    });
  }
}

// The server's workers (CTR_FUSE_THREADS; launch_sqfs_serve.c) each keep caches of their
// own, since libsquashfuse 0.1.105's are not thread-safe. Four walkers at once, each in
// another order, over a fresh mount served by four workers: every listing, attribute and
// digest must still be the image's.
const PARALLEL = `
import hashlib, json, os, random, stat, sys, threading
root = sys.argv[1]
def walk(seed):
    out, order = {}, random.Random(seed)
    stack = [root]
    while stack:
        d = stack.pop(order.randrange(len(stack)))
        names = os.listdir(d)
        order.shuffle(names)
        for name in names:
            p = os.path.join(d, name)
            st = os.lstat(p)
            e = [oct(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode) else 0]
            if stat.S_ISDIR(st.st_mode):
                stack.append(p)
            elif stat.S_ISREG(st.st_mode):
                with open(p, 'rb') as f:
                    e.append(hashlib.sha256(f.read()).hexdigest())
            out[os.path.relpath(p, root)] = e
    return out
results = [None] * 4
def run(i):
    results[i] = walk(i)
threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
for r in results: print(json.dumps(r, sort_keys=True))
`;

Fuse('workers :: four walkers at once over four server threads see exactly the image', async () => {
  const img = await image(false);
  const host = await execa('/usr/bin/python3', ['-c', PARALLEL, join(await source(false), 'data')]);
  const want = host.stdout.trim().split('\n')[0];
  const work = await userTmp('ctr-fuse-');
  const r = await ctr(['exec', '-B', '/usr', '--pwd', '/', img, '/usr/bin/python3', '-c', PARALLEL, '/data'],
    { cwd: work, env: { CTR_FUSE_THREADS: '4' } });
  assert.is(r.stderr, '');
  assert.is(r.exitCode, 0);
  const walks = String(r.stdout).trim().split('\n');
  assert.is(walks.length, 4);
  walks.forEach((w, i) => assert.ok(w === want, `walker ${i} saw another tree`));
});

// The data block cache (launch_sqfs_blocks.c): 64 slots in one mapping, each filled
// outside the lock and evicted least recently used. A 20 MiB file is 160 blocks: four
// readers at once, each in its own shuffled order of 64 KiB chunks, through four server
// threads, make it evict and refill slots while others are copying from theirs.
const CHUNKS = `
import hashlib, random, sys, threading
path, size, step = sys.argv[1], int(sys.argv[2]), 65536
out = [None] * 4
def read(i):
    order = list(range(0, size, step))
    random.Random(i).shuffle(order)
    buf = bytearray(size)
    with open(path, 'rb', buffering=0) as f:
        for at in order:
            f.seek(at)
            buf[at:at + step] = f.read(step)
    out[i] = hashlib.sha256(buf).hexdigest()
ts = [threading.Thread(target=read, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(' '.join(out))
`;
const BIG_FILE = 20 << 20;

async function bigImage(): Promise<{ img: string; sha: string }> {
  const dir = await cached('fuse-big', async (tmp) => {
    const src = join(tmp, 'src');
    for (const d of ['usr', 'etc', 'tmp', 'proc', 'sys', 'dev', 'data']) await mkdir(join(src, d), { recursive: true });
    for (const l of ['bin', 'lib', 'lib64']) await symlink(`usr/${l}`, join(src, l));
    const data = randomBytes(BIG_FILE);
    await writeFile(join(src, 'data/big'), data);
    await execa('mksquashfs', [src, join(tmp, 'img.sqfs'), '-noappend', '-all-root', '-comp', 'zstd', '-quiet', '-no-progress']);
    await chmod(tmp, 0o755);
    await chmod(join(tmp, 'img.sqfs'), 0o644);
    await writeFile(join(tmp, 'sha256'), createHash('sha256').update(data).digest('hex'));
    await rm(src, { recursive: true });
  });
  return { img: join(dir, 'img.sqfs'), sha: await readFile(join(dir, 'sha256'), 'utf8') };
}

Fuse('block cache :: 160 blocks through 64 slots, four readers in shuffled orders over four threads', async () => {
  const { img, sha } = await bigImage();
  const work = await userTmp('ctr-fuse-');
  for (const threads of ['4', '1']) {
    const r = await ctr(['exec', '-B', '/usr', '--pwd', '/', img, '/usr/bin/python3', '-c', CHUNKS, '/data/big', String(BIG_FILE)],
      { cwd: work, env: { CTR_FUSE_THREADS: threads } });
    assert.is(r.stderr, '');
    assert.is(r.exitCode, 0);
    assert.equal(String(r.stdout).trim().split(' '), [sha, sha, sha, sha], `${threads} server threads`);
  }
});

Fuse.run();
