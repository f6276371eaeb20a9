// Shell completion scripts for bash and zsh, made from ctr's command table (run.ts's
// commandTable: the same flags and operands the parser uses), by `ctr completion SHELL`
// and at build time into dist/completion (scripts/docs.mjs). Pure: table in, text out.
//
// What is completed: the command; a command's flags (for exec, run, shell and plan only
// before the image, where ctr's flags end); a flag's value (its choices, else a file);
// and each operand by its kind (files, command names, ctr's commands, or fixed words).
import type { Options } from 'yargs';
import { CtrError } from '../errors.js';
import type { CommandSpec, Positional } from './run.js';

/** Verbs whose flags end at the first operand (the image): the rest is the command's. */
const FLAGS_END_AT_OPERAND = new Set(['exec', 'run', 'shell', 'plan']);

/** Everything written into a script comes from ctr's own table; check that it is plain
 * words, so that no quoting can go wrong. */
function word(w: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(w)) throw new Error(`completion: not a plain word: ${JSON.stringify(w)}`);
  return w;
}

export interface FlagSpelling { name: string; short?: string; takesValue: boolean; repeats: boolean; choices?: string[]; describe: string }

/** A table's flags, each with its spellings. */
export function flagSpellings(flags: Record<string, Options>): FlagSpelling[] {
  return Object.entries(flags).map(([name, o]) => ({
    name: word(name),
    short: [o.alias ?? []].flat().map(String).find((a) => a.length === 1),
    takesValue: o.type !== 'boolean',
    repeats: Boolean(o.array),
    choices: o.choices ? (o.choices as unknown[]).map((c) => word(String(c))) : undefined,
    describe: String(o.describe ?? ''),
  }));
}

const spellings = (f: FlagSpelling) => [`--${f.name}`, ...(f.short ? [`-${word(f.short)}`] : [])];

function kind(p: Positional): string {
  const k = p.complete ?? 'file';
  return Array.isArray(k) ? `w:${k.map(word).join(',')}` : k;
}

export function bashCompletion(table: CommandSpec[]): string {
  const verbs = table.map((c) => word(c.verb)).join(' ');
  const cases = table.map((c) => {
    const flags = flagSpellings(c.flags);
    const all = [...flags.flatMap(spellings), '--help', '-h'].join(' ');
    const values = flags.filter((f) => f.takesValue).flatMap(spellings).join(' ');
    const kinds = c.positionals.map(kind).join(' ');
    const repeat = c.positionals.at(-1)?.repeats ? '1' : '';
    const choices = flags.filter((f) => f.choices).map((f) =>
      `      ${spellings(f).join('|')}) COMPREPLY=($(compgen -W '${f.choices!.join(' ')}' -- "$cur")); return 0 ;;\n`).join('');
    return `    ${c.verb})\n      flags='${all}' values=' ${values} ' kinds=(${kinds}) repeat=${repeat} stop=${FLAGS_END_AT_OPERAND.has(c.verb) ? 1 : ''}\n` +
      (choices ? `      case $prev in\n${choices.replace(/^ {6}/gm, '        ')}      esac ;;\n` : '      ;;\n');
  }).join('');
  return `# bash completion for ctr, made from ctr's command table (ctr completion bash).
# Load it with: source <(ctr completion bash); or install it as
# /usr/share/bash-completion/completions/ctr (make install does).
_ctr() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local verbs='${verbs}'
  COMPREPLY=()
  if [ "$COMP_CWORD" -le 1 ]; then
    COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
    return 0
  fi
  local flags values kinds repeat stop
  case \${COMP_WORDS[1]} in
${cases}    *) return 0 ;;
  esac
  # Count the operands before this word, skipping flags and their values.
  local i=2 n=0 w ddash=
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w=\${COMP_WORDS[i]}
    if [ -z "$ddash" ] && { [ "$n" -eq 0 ] || [ -z "$stop" ]; }; then
      case $w in
        --) ddash=1; i=$((i + 1)); continue ;;
        -?*)
          if [[ $values == *" $w "* ]]; then
            # This word is that flag's value: its choices (above), else a file.
            [ "$i" -eq $((COMP_CWORD - 1)) ] && { COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return 0; }
            i=$((i + 1))
          fi
          i=$((i + 1)); continue ;;
      esac
    fi
    n=$((n + 1)); i=$((i + 1))
  done
  if [ -z "$ddash" ] && { [ "$n" -eq 0 ] || [ -z "$stop" ]; } && [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return 0
  fi
  local k=
  if [ "$n" -lt \${#kinds[@]} ]; then k=\${kinds[n]}; elif [ -n "$repeat" ]; then k=\${kinds[\${#kinds[@]}-1]}; fi
  case $k in
    file) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null ;;
    command) COMPREPLY=($(compgen -c -- "$cur")) ;;
    verb) COMPREPLY=($(compgen -W "$verbs" -- "$cur")) ;;
    w:*) k=\${k#w:}; COMPREPLY=($(compgen -W "\${k//,/ }" -- "$cur")) ;;
  esac
  return 0
}
complete -F _ctr ctr ctr-hpc
`;
}

/** Text for inside zsh's single quotes and _arguments' [brackets]. */
const zq = (s: string) => s.replace(/([[\]:\\])/g, '\\$1').replace(/'/g, "'\\''");

export function zshCompletion(table: CommandSpec[]): string {
  const verbs = table.map((c) => `    '${word(c.verb)}:${zq(c.describe)}'`).join('\n');
  const cases = table.map((c) => {
    const specs = flagSpellings(c.flags).map((f) => {
      const action = f.takesValue ? `:${f.name}:${f.choices ? `(${f.choices.join(' ')})` : '_files'}` : '';
      const names = f.short ? `{-${f.short}${f.takesValue ? '+' : ''},--${f.name}${f.takesValue ? '=' : ''}}` : `--${f.name}${f.takesValue ? '=' : ''}`;
      const excl = f.repeats ? "'*'" : f.short ? `'(-${f.short} --${f.name})'` : '';
      return `        ${excl}${names}'[${zq(f.describe)}]${action}'`;
    });
    const ops = c.positionals.map((p, i) => {
      const k = p.complete ?? 'file';
      const action = k === 'file' ? '_files' : k === 'command' ? '_command_names -e' : k === 'verb' ? `(${table.map((t) => t.verb).join(' ')})` : `(${k.join(' ')})`;
      return `        '${p.repeats ? '*' : `${i + 1}`}:${p.name.toLowerCase()}:${action}'`;
    });
    const args = [...(FLAGS_END_AT_OPERAND.has(c.verb) ? ["        -A '-*'"] : []), "        '(- *)'{-h,--help}'[show help]'", ...specs, ...ops];
    return `    ${c.verb})\n      _arguments -s -S \\\n${args.join(' \\\n')} ;;\n`;
  }).join('');
  return `#compdef ctr ctr-hpc
# zsh completion for ctr, made from ctr's command table (ctr completion zsh).
# Install it as _ctr in a directory of $fpath (make install does), then compinit.
_ctr() {
  local curcontext=$curcontext state line
  _arguments -C '(- *)'{-h,--help}'[show help]' '(- *)--version[show the version]' '1: :->verb' '*:: :->args' && return
  case $state in
  verb)
    local -a verbs
    verbs=(
${verbs}
    )
    _describe -t commands 'ctr command' verbs ;;
  args)
    case $words[1] in
${cases}    esac ;;
  esac
}
_ctr "$@"
`;
}

export function completionScript(shell: string, table: CommandSpec[]): string {
  if (shell === 'bash') return bashCompletion(table);
  if (shell === 'zsh') return zshCompletion(table);
  throw new CtrError(`unknown shell '${shell}'`, 'ctr completes bash and zsh', { hint: 'usage: ctr completion bash|zsh' });
}
