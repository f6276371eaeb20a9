// Man pages in roff (man(7) macros), made from ctr's command table at build time
// (scripts/docs.mjs writes dist/man): ctr(1) lists the commands, the environment and
// the files; ctr-VERB(1) gives one command's synopsis, operands and every flag with its
// description, choices and default. Pure: table in, text out.
import type { Options } from 'yargs';
import type { CommandSpec } from './run.js';
import { BIND_VARS, DEFAULT_CONFIG } from './site.js';

/** Text safe in roff: backslashes escaped, no line starting a request. */
function text(s: string): string {
  return s.replace(/\\/g, '\\e').split('\n').map((l) => (/^[.']/.test(l) ? `\\&${l}` : l)).join('\n');
}
/** A flag or command name in bold, with its hyphens as hyphens (not soft ones). */
const bold = (s: string) => `\\fB${text(s).replace(/-/g, '\\-')}\\fR`;

function header(name: string, version: string, date: string): string {
  return `.TH ${name.toUpperCase().replace(/-/g, '\\-')} 1 "${date}" "ctr ${version}" "ctr manual"\n`;
}

function flagItem(name: string, o: Options): string {
  const short = [o.alias ?? []].flat().map(String).find((a) => a.length === 1);
  const value = o.type === 'boolean' ? '' : ` \\fI${o.choices ? (o.choices as unknown[]).join('|') : 'VALUE'}\\fR`;
  const names = [...(short ? [bold(`-${short}`)] : []), bold(`--${name}`)].join(', ');
  const notes: string[] = [];
  if (o.array && !/repeatable/.test(String(o.describe))) notes.push('May be given more than once.');
  if (o.demandOption) notes.push('Required.');
  if (o.default !== undefined && o.type !== 'boolean' && !(Array.isArray(o.default) && o.default.length === 0)) notes.push(`Default: ${text(String(o.default))}.`);
  return `.TP\n${names}${value}\n${text(String(o.describe ?? ''))}${notes.length ? `\n${notes.join(' ')}` : ''}\n`;
}

export function commandPage(c: CommandSpec, version: string, date: string): string {
  const name = `ctr-${c.verb}`;
  let out = header(name, version, date);
  out += `.SH NAME\n${bold(name)} \\- ${text(c.describe)}\n`;
  out += `.SH SYNOPSIS\n.B ctr\n${text(c.usage)}\n`;
  out += `.SH DESCRIPTION\n${text(c.describe.charAt(0).toUpperCase() + c.describe.slice(1))}.\n`;
  if (['exec', 'run', 'shell', 'plan'].includes(c.verb)) {
    out += ".PP\nctr's flags come before the image; everything after it belongs to the command.\n";
  }
  if (c.positionals.length) {
    out += '.SH OPERANDS\n' + c.positionals.map((p) => `.TP\n\\fI${text(p.name)}\\fR${p.repeats ? '...' : ''}\n${text(p.describe)}${p.optional ? ' (optional)' : ''}\n`).join('');
  }
  out += '.SH OPTIONS\n' + Object.entries(c.flags).map(([n, o]) => flagItem(n, o)).join('') +
    `.TP\n${bold('-h')}, ${bold('--help')}\nshow this command's flags\n`;
  out += `.SH EXIT STATUS\n${c.verb === 'exec' || c.verb === 'run' || c.verb === 'shell'
    ? "The command's own; 128+N when it dies of signal N; 255 when ctr itself fails."
    : '0 on success; 255 when ctr fails, with one line ctr: error: on standard error.'}\n`;
  out += `.SH SEE ALSO\n${bold('ctr')}(1)\n`;
  return out;
}

export function mainPage(table: CommandSpec[], version: string, date: string): string {
  let out = header('ctr', version, date);
  out += '.SH NAME\nctr \\- rootless containers for HPC\n';
  out += '.SH SYNOPSIS\n.B ctr\n\\fICOMMAND\\fR [\\fIflags\\fR] ...\n.br\n.B ctr\n\\-\\-version | \\-\\-help\n';
  out += '.SH DESCRIPTION\nctr runs SIF and SquashFS images with no root, no setuid helper and no daemon. ' +
    'It is also installed as \\fBctr\\-hpc\\fR, for systems where containerd\'s \\fBctr\\fR comes first in PATH.\n';
  out += '.SH COMMANDS\n' + table.map((c) => `.TP\n${bold(c.verb)}\n${text(c.describe)}; see ${bold(`ctr-${c.verb}`)}(1).\n`).join('');
  const env: Array<[string, string]> = [
    ...BIND_VARS.map((v): [string, string] => [v, 'binds for exec, run and shell, as a comma list like \\-B; all of them before the \\-B flags\' binds']),
    ['APPTAINER_CLEANENV, APPTAINER_CONTAIN, APPTAINER_HOME', 'as \\-\\-cleanenv, \\-\\-contain and \\-\\-home (also with SINGULARITY_)'],
    ['CTR_CONFIG', `the site configuration file (default ${DEFAULT_CONFIG})`],
    ['CTR_CACHEDIR', 'the blob cache of pulls (default $XDG_CACHE_HOME/ctr, else ~/.cache/ctr)'],
    ['CTR_TMPDIR', "where ctr makes temporary files (default $TMPDIR, else /tmp)"],
    ['CTR_NO_SNAPSHOT', 'start from plain Node, not the start-up snapshot'],
  ];
  out += '.SH ENVIRONMENT\n' + env.map(([n, d]) => `.TP\n${bold(n)}\n${d}\n`).join('');
  out += `.SH FILES\n.TP\n${bold(DEFAULT_CONFIG)}\nthe site configuration: default binds and the staging directory\n`;
  out += '.SH EXIT STATUS\nctr\'s own failures exit 255 with one line \\fBctr: error:\\fR (and \\fBctr: hint:\\fR) on standard error; ' +
    'exec, run and shell otherwise exit with the command\'s status.\n';
  out += '.SH SEE ALSO\n' + table.map((c) => `${bold(`ctr-${c.verb}`)}(1)`).join(', ') + '\n';
  return out;
}

/** Every page, by file name. */
export function manPages(table: CommandSpec[], version: string, date: string): Record<string, string> {
  const pages: Record<string, string> = { 'ctr.1': mainPage(table, version, date) };
  for (const c of table) pages[`ctr-${c.verb}.1`] = commandPage(c, version, date);
  return pages;
}
