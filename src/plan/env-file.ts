// `--env-file F`: shell assignments, evaluated as Apptainer evaluates them (its embedded
// shell, commands disabled): `NAME=VALUE` words, optionally after `export`, several on a
// line; '...' literal; "..." with \" \\ \$ \` escapes and $NAME / ${NAME} expansions;
// unquoted words with \x escapes and expansions; # comments. Expansions see the host's
// environment (ENV) and the file's earlier assignments. Commands ($(...), backquotes) are
// refused, not run. Pure. The values are evaluated once more in the container, after the
// image's env scripts, as every override is (unless --no-eval): `PATH="\$PATH:/x"` in a
// file extends the image's PATH.
import { CtrError } from '../errors.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

export function parseEnvFile(text: string, file: string, env: Record<string, string | undefined> = {}): string[] {
  const vars = new Map<string, string>();
  const out: string[] = [];
  let i = 0;
  let line = 1;
  const fail = (why: string): never => { throw new CtrError(`env file ${file}`, `line ${line}: ${why}`); };
  const lookup = (n: string) => vars.get(n) ?? env[n] ?? '';
  const expand = (): string => {
    // at text[i] === '$'
    const braced = text[i + 1] === '{';
    const m = NAME.exec(text.slice(i + (braced ? 2 : 1)));
    if (text[i + 1] === '(') fail('commands ($(...)) are not run in an env file');
    if (!m) { i++; return '$'; }
    i += (braced ? 2 : 1) + m[0].length;
    if (braced) {
      if (text[i] !== '}') fail('only ${NAME} expansions are supported');
      i++;
    }
    return lookup(m[0]);
  };
  const word = (): string => {
    let v = '';
    while (i < text.length && !/[\s;]/.test(text[i])) {
      const c = text[i];
      if (c === "'") {
        const end = text.indexOf("'", i + 1);
        if (end < 0) fail('unterminated \'');
        line += text.slice(i, end).split('\n').length - 1;
        v += text.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        const opened = line;
        for (i++; text[i] !== '"'; ) {
          if (i >= text.length) { line = opened; fail('unterminated "'); }
          if (text[i] === '\\' && '"\\$`\n'.includes(text[i + 1])) {
            if (text[i + 1] !== '\n') v += text[i + 1];
            i += 2;
          } else if (text[i] === '$') v += expand();
          else if (text[i] === '`') fail('commands (`...`) are not run in an env file');
          else {
            if (text[i] === '\n') line++;
            v += text[i++];
          }
        }
        i++;
      } else if (c === '\\') {
        if (text[i + 1] !== '\n') v += text[i + 1] ?? '';
        i += 2;
      } else if (c === '$') v += expand();
      else if (c === '`') fail('commands (`...`) are not run in an env file');
      else v += text[i++];
    }
    return v;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') { line++; i++; continue; }
    if (/[\s;]/.test(c)) { i++; continue; }
    if (c === '#') { while (i < text.length && text[i] !== '\n') i++; continue; }
    const start = i;
    const w = word();
    if (w === 'export' && text.slice(start, i) === 'export') continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(text.slice(start, i));
    if (!m) fail(`expected NAME=VALUE, got ${JSON.stringify(text.slice(start, i))}`);
    const value = w.slice(m![1].length + 1);
    vars.set(m![1], value);
    out.push(`${m![1]}=${value}`);
  }
  return out;
}
