// The environment policy (src/plan/env.ts): --env lists, --env-file, and what composeEnv
// tells the launcher to keep, unset, set and override.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { composeEnv, DEFAULT_PATH, ENV_PREFIXES, splitAssignment, splitEnvList, type EnvInputs } from '../../src/plan/env.js';
import { parseEnvFile } from '../../src/plan/env-file.js';
import { message } from '../helpers/errors.js';


const inputs = (over: Partial<EnvInputs> = {}): EnvInputs => ({
  cleanenv: false, overrides: [], home: '/home/u', pwd: '/work', imagePath: '/img/app.sif', user: 'u', shell: false, ...over,
});

const Env = suite('plan env');

Env('env list :: repeats and comma lists split into NAME=VALUE pieces', () => {
  assert.equal(splitEnvList(['A=1,B=2', 'C=3']), ['A=1', 'B=2', 'C=3']);
});

Env('env list :: a comma not followed by NAME= stays in the value', () => {
  assert.equal(splitEnvList(['LIST=a,b,C=3', 'X=1,2']), ['LIST=a,b', 'C=3', 'X=1,2']);
});

Env('env list :: empty input', () => {
  assert.equal(splitEnvList([]), []);
});

Env('assignment :: value may hold = and be empty', () => {
  assert.equal(splitAssignment('A=b=c'), { name: 'A', value: 'b=c' });
  assert.equal(splitAssignment('A='), { name: 'A', value: '' });
});

Env('assignment errors :: no = or a bad name', () => {
  assert.is(message(() => splitAssignment('A')), 'environment variable "A": expected NAME=VALUE');
  assert.is(message(() => splitAssignment('1A=x')), 'environment variable "1A=x": expected NAME=VALUE');
  assert.is(message(() => splitAssignment('x y=1')), 'environment variable "x y=1": expected NAME=VALUE');
});

Env('env file :: comments, blank lines, export, quotes as a shell reads them', () => {
  const text = '# a comment\n\nA=1\nexport B="two words"\n  C=\'$HOME\'  \nD=x=y\nF=\nG=a\\ b H="q\\"\\$X"\n';
  assert.equal(parseEnvFile(text, 'f'), ['A=1', 'B=two words', 'C=$HOME', 'D=x=y', 'F=', 'G=a b', 'H=q"$X']);
});

Env('env file :: $NAME and ${NAME} see the host environment and earlier lines', () => {
  assert.equal(parseEnvFile('A=$HOST_X/a\nB="${A}:$NOPE:$A"\nC=\'$A\'\n', 'f', { HOST_X: '/h' }), ['A=/h/a', 'B=/h/a::/h/a', 'C=$A']);
});

Env('env file errors :: the line number of a bad line; commands are refused, not run', () => {
  assert.is(message(() => parseEnvFile('A=1\n# ok\nnot an assignment\n', '/tmp/e.env')),
    'env file /tmp/e.env: line 3: expected NAME=VALUE, got "not"');
  assert.is(message(() => parseEnvFile('A=1\nB=$(id -u)\n', '/tmp/e.env')),
    'env file /tmp/e.env: line 2: commands ($(...)) are not run in an env file');
  assert.is(message(() => parseEnvFile('E="unbalanced\n', 'f')), 'env file f: line 1: unterminated "');
});

Env('compose :: default passes the host but unsets PATH and friends, then sets ctr variables', () => {
  const p = composeEnv(inputs());
  assert.is(p.clean, false);
  assert.equal(p.prefixes, ENV_PREFIXES);
  assert.equal(ENV_PREFIXES, ['CTRENV_', 'APPTAINERENV_', 'SINGULARITYENV_']);
  assert.equal(p.ops, [
    { op: 'unset', name: 'PATH' },
    { op: 'unset', name: 'LD_LIBRARY_PATH' },
    { op: 'unset', name: 'PS1' },
    { op: 'unset', name: 'PROMPT_COMMAND' },
    { op: 'set', name: 'PATH', value: DEFAULT_PATH },
    { op: 'set', name: 'HOME', value: '/home/u' },
    { op: 'set', name: 'PWD', value: '/work' },
    { op: 'set', name: 'USER', value: 'u' },
    { op: 'set', name: 'LOGNAME', value: 'u' },
    { op: 'set', name: 'CTR_CONTAINER', value: '/img/app.sif' },
    { op: 'set', name: 'CTR_NAME', value: 'app.sif' },
    { op: 'set', name: 'APPTAINER_CONTAINER', value: '/img/app.sif' },
    { op: 'set', name: 'APPTAINER_NAME', value: 'app.sif' },
    { op: 'set', name: 'SINGULARITY_CONTAINER', value: '/img/app.sif' },
    { op: 'set', name: 'SINGULARITY_NAME', value: 'app.sif' },
  ]);
});

Env('compose :: cleanenv keeps only TERM, LANG, LC_ALL and the proxy variables from the host', () => {
  const p = composeEnv(inputs({ cleanenv: true }));
  assert.is(p.clean, true);
  assert.equal(p.ops.filter((o) => o.op === 'keep').map((o) => o.name), ['TERM', 'LANG', 'LC_ALL',
    'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'ftp_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'FTP_PROXY']);
});

Env('compose :: the runtime\'s own host variables are dropped; --no-eval is carried', () => {
  assert.equal(composeEnv(inputs()).dropPrefixes, ['APPTAINER_', 'SINGULARITY_']);
  assert.is(composeEnv(inputs()).noEval, false);
  assert.is(composeEnv(inputs({ noEval: true })).noEval, true);
});

Env('compose :: overrides come last, in order', () => {
  const p = composeEnv(inputs({ overrides: ['A=1', 'B=x=y', 'A=2'] }));
  assert.equal(p.ops.slice(-3), [
    { op: 'override', name: 'A', value: '1' },
    { op: 'override', name: 'B', value: 'x=y' },
    { op: 'override', name: 'A', value: '2' },
  ]);
});

Env('compose :: shell sets the prompt', () => {
  assert.ok(composeEnv(inputs({ shell: true })).ops.some((o) => o.op === 'set' && o.name === 'PS1' && o.value === 'ctr> '));
  assert.not.ok(composeEnv(inputs()).ops.some((o) => o.op === 'set' && o.name === 'PS1'));
});

Env('compose errors :: a bad override is refused', () => {
  assert.is(message(() => composeEnv(inputs({ overrides: ['NOEQUALS'] }))), 'environment variable "NOEQUALS": expected NAME=VALUE');
});

Env.run();
