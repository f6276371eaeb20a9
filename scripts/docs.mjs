// Man pages and shell completion scripts (part of `npm run build`, after tsc): both are
// made from the command table the CLI itself parses with (src/cli/run.ts commandTable),
// so a flag added there is in `ctr exec --help`, ctr-exec(1) and the completion at once.
//   dist/man/ctr.1, dist/man/ctr-VERB.1       roff, for man -l or MANPATH
//   dist/completion/ctr.bash, dist/completion/_ctr   bash and zsh (= ctr completion SHELL)
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { commandTable } = await import(join(repo, 'dist/src/cli/run.js'));
const { manPages } = await import(join(repo, 'dist/src/cli/manpage.js'));
const { bashCompletion, zshCompletion } = await import(join(repo, 'dist/src/cli/completion.js'));

const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
// Reproducible when the packager says when (SOURCE_DATE_EPOCH), else today.
const when = process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : new Date();
const date = when.toISOString().slice(0, 10);
const table = commandTable();

const man = join(repo, 'dist/man');
rmSync(man, { recursive: true, force: true });
mkdirSync(man, { recursive: true });
for (const [name, text] of Object.entries(manPages(table, version, date))) writeFileSync(join(man, name), text);

const completion = join(repo, 'dist/completion');
mkdirSync(completion, { recursive: true });
writeFileSync(join(completion, 'ctr.bash'), bashCompletion(table));
writeFileSync(join(completion, '_ctr'), zshCompletion(table));
