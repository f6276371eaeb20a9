// Shell completion and man pages (issue 13), both made from the command table the CLI
// parses with: the generated bash completion run in a real bash as a user's TAB runs it
// (COMP_WORDS/COMP_CWORD, then the function), the zsh one loaded by a real zsh, and the
// roff pages rendered by man-db's `man -l`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CTR_ROOT, REPO } from '../helpers/paths.js';
import { asUser, ctr, userTmp } from '../helpers/user.js';
import { commandTable } from '../../src/cli/run.js';
import { flagSpellings } from '../../src/cli/completion.js';

const Bash = suite('bash completion');
let tmp: string, script: string;

Bash.before(async () => {
  tmp = await userTmp('ctr-completion-');
  const r = await ctr(['completion', 'bash']);
  assert.is(r.stderr, '');
  assert.is(r.exitCode, 0);
  script = join(tmp, 'ctr.bash');
  await writeFile(script, r.stdout as string, { mode: 0o644 });
});
Bash.after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** What TAB offers after WORDS (the last one is the word being completed), in a real bash. */
async function complete(words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
  const r = await asUser('bash', ['--norc', '--noprofile', '-c',
    `source ${script}; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _ctr; printf '%s\\n' "\${COMPREPLY[@]}"`], { cwd: tmp });
  assert.is(r.stderr, '', words.join(' '));
  assert.is(r.exitCode, 0, words.join(' '));
  return [...new Set((r.stdout as string).split('\n').filter(Boolean))].sort();
}

Bash('ctr ex<TAB> :: exec', async () => {
  assert.equal(await complete(['ctr', 'ex']), ['exec']);
  assert.equal(await complete(['ctr', 'b']), ['build']);
});

Bash('ctr exec --wr<TAB> :: the flags of the table that start so', async () => {
  assert.equal(await complete(['ctr', 'exec', '--wr']), ['--writable', '--writable-tmpfs', '--writable-tmpfs-size']);
  assert.equal(await complete(['ctr', 'build', '--f']), ['--fakeroot-mode', '--fix-perms', '--force']);
});

Bash('every flag of every command :: offered after a dash, as the table has it', async () => {
  for (const c of commandTable()) {
    const want = [...flagSpellings(c.flags).flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]), '--help', '-h'].sort();
    assert.equal(await complete(['ctr', c.verb, '-']), want, c.verb);
  }
});

Bash('flag values :: a flag\'s choices; else files', async () => {
  assert.equal(await complete(['ctr', 'exec', '--fakeroot-mode', 's']), ['seccomp', 'subuid']);
  await writeFile(join(tmp, 'data.sif'), '');
  assert.equal(await complete(['ctr', 'exec', '-B', 'da']), ['data.sif']);
});

Bash('operands :: image files, then command names; after the image, no ctr flags', async () => {
  assert.equal(await complete(['ctr', 'exec', '--cleanenv', 'da']), ['data.sif']);
  assert.ok((await complete(['ctr', 'exec', 'data.sif', 'ech'])).includes('echo'));
  assert.equal(await complete(['ctr', 'exec', 'data.sif', '--wr']), []);
  assert.equal(await complete(['ctr', 'cache', 'c']), ['clean']);
  assert.equal(await complete(['ctr', 'completion', '']), ['bash', 'zsh']);
  assert.equal(await complete(['ctr', 'help', 'in']), ['inspect', 'instance']);
});

Bash('build time :: dist/completion holds what ctr completion prints', async () => {
  for (const [shell, file] of [['bash', 'ctr.bash'], ['zsh', '_ctr']]) {
    const r = await ctr(['completion', shell]);
    assert.is(r.stdout, readFileSync(join(CTR_ROOT, 'dist/completion', file), 'utf8'), shell);
  }
});

Bash('bad shell :: ctr\'s error, exit 255', async () => {
  const r = await ctr(['completion', 'fish']);
  assert.is(r.stderr, "ctr: error: unknown shell 'fish': ctr completes bash and zsh\nctr: hint: usage: ctr completion bash|zsh\n");
  assert.is(r.stdout, '');
  assert.is(r.exitCode, 255);
  const none = await ctr(['completion']);
  assert.is(none.stderr, 'ctr: error: no shell given (bash or zsh)\nctr: hint: usage: ctr completion bash|zsh\n');
  assert.is(none.exitCode, 255);
});

Bash.run();

const Zsh = suite('zsh completion');

Zsh('loads in zsh :: compinit registers _ctr for ctr and ctr-hpc', async () => {
  const dir = await userTmp('ctr-zsh-');
  try {
    const r = await asUser('zsh', ['-f', '-c',
      `fpath=(${CTR_ROOT}/dist/completion $fpath); autoload -Uz compinit; compinit -u -d ${dir}/zcompdump; print -r -- $_comps[ctr] $_comps[ctr-hpc]; zsh -n ${CTR_ROOT}/dist/completion/_ctr && print parsed`]);
    assert.is(r.stderr, '');
    assert.is(r.stdout, '_ctr _ctr\nparsed\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Zsh('TAB in an interactive zsh :: commands, flags, choices, operands (zpty)', async () => {
  const dir = await userTmp('ctr-zsh-');
  try {
    // An interactive zsh on a pseudo-terminal (zsh's zpty): each line is typed with a TAB
    // (complete-word) and Enter; zle-line-finish prints what the line had become.
    const lines = ['ctr ex', 'ctr exec --writable-', 'ctr exec --fakeroot-mode se', 'ctr cache cl', 'ctr inspect --deff', 'ctr-hpc run-h', 'ctr completion z'];
    const script = [
      'zmodload zsh/zpty',
      "zpty z 'zsh -f -i'",
      `zpty -w z "PS1='>'; fpath=(${CTR_ROOT}/dist/completion \\$fpath); autoload -Uz compinit; compinit -u -d ${dir}/zcompdump; ` +
        `bindkey '^I' complete-word; zle-line-finish() { print -r -- \\"[[\\$BUFFER]]\\" }; zle -N zle-line-finish"`,
      ...lines.map((l) => `zpty -w z '${l}'$'\\t\\n'`),
      "zpty -w z 'exit'",
      'out=; while zpty -r z chunk; do out+=$chunk; done',
      "print -r -- \"${out//$'\\r'/}\"",
    ].join('\n');
    await writeFile(join(dir, 'type.zsh'), script, { mode: 0o644 });
    const r = await asUser('timeout', ['60', 'zsh', '-f', join(dir, 'type.zsh')], { cwd: dir });
    const got = [...String(r.stdout).matchAll(/\[\[([^\]\n]+)\]\]/g)].map((m) => m[1]).filter((b) => b !== '$BUFFER' && b !== 'exit');
    assert.equal(got, ['ctr exec', 'ctr exec --writable-tmpfs', 'ctr exec --fakeroot-mode seccomp', 'ctr cache clean', 'ctr inspect --deffile',
      'ctr-hpc run-help', 'ctr completion zsh'], String(r.stdout));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Zsh.run();

const Man = suite('man pages');

/** man-db's rendering of PAGE, as plain text (not a terminal: no bold overstrikes). */
async function man(page: string): Promise<string> {
  const r = await asUser('man', ['-l', join(CTR_ROOT, 'dist/man', page)], { env: { MANWIDTH: '200', MANPAGER: 'cat', PAGER: 'cat' } });
  assert.is(r.stderr, '', page);
  assert.is(r.exitCode, 0, page);
  return r.stdout as string;
}

Man('ctr-exec(1) :: every flag of the table, with its description', async () => {
  const text = await man('ctr-exec.1');
  const flat = text.replace(/\s+/g, ' ');
  assert.match(text, /^CTR-EXEC\(1\)/);
  assert.ok(flat.includes('ctr exec [flags] IMAGE COMMAND [ARG...]'), 'synopsis');
  const exec = commandTable().find((c) => c.verb === 'exec')!;
  for (const f of flagSpellings(exec.flags)) {
    const names = `${f.short ? `-${f.short}, ` : ''}--${f.name}${f.takesValue ? ` ${f.choices ? f.choices.join('|') : 'VALUE'}` : ''}`;
    assert.ok(flat.includes(`${names} ${f.describe.replace(/\s+/g, ' ')}`), `${names} and its description`);
  }
});

Man('ctr(1) and one page a command :: all render, each naming its command', async () => {
  const table = commandTable();
  const main = (await man('ctr.1')).replace(/\s+/g, ' ');
  for (const c of table) {
    assert.ok(main.includes(`${c.verb} ${c.describe}`), `ctr(1) lists ${c.verb}`);
    assert.ok((await man(`ctr-${c.verb}.1`)).replace(/\s+/g, ' ').includes(`ctr-${c.verb} - ${c.describe}`), `ctr-${c.verb}(1)`);
  }
  assert.ok(main.includes('CTR_TMPDIR'), 'environment');
  assert.ok(main.includes('/etc/ctr/ctr.conf'), 'files');
  // roff lint: no warnings from groff at its strictest.
  const lint = await execa('groff', ['-man', '-ww', '-z', ...table.map((c) => join(REPO, 'dist/man', `ctr-${c.verb}.1`)), join(REPO, 'dist/man/ctr.1')], { reject: false });
  assert.is(lint.stderr, '');
});

Man.run();
