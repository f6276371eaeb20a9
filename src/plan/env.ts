// The container's environment, as Apptainer users expect it. Pure policy: the result is
// a list of operations that the launcher applies at launch time to the environment it
// actually has (so one plan serves every rank of a job).
//
// - Host variables pass through, except PATH and LD_LIBRARY_PATH (the host's would point
//   at host directories; PATH starts from a standard value that the image's env scripts
//   extend) and HOME/PWD (set to the container's).
// - `--cleanenv` passes only TERM, the proxy variables (as Apptainer does), LANG and
//   LC_ALL (Apptainer sets LANG=C: a deliberate difference) and the variables ctr sets.
// - The runtime's own host settings (APPTAINER_*, SINGULARITY_*) never pass.
// - The image's /.singularity.d/env/*.sh come next (the launcher sources them), then the
//   overrides: CTRENV_X, APPTAINERENV_X, SINGULARITYENV_X from the host (the first of
//   those wins), then --env-file and --env (the last wins). Their values are
//   shell-evaluated in the container unless --no-eval; PATH, APPEND_PATH, PREPEND_PATH
//   and LD_LIBRARY_PATH follow Apptainer's rules, and HOME is refused (launch_exec.c).
import { CtrError } from '../errors.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const ENV_PREFIXES = ['CTRENV_', 'APPTAINERENV_', 'SINGULARITYENV_'];
const NOT_PASSED = ['PATH', 'LD_LIBRARY_PATH', 'PS1', 'PROMPT_COMMAND'];
const PROXIES = ['http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'ftp_proxy'];
export const KEPT_WHEN_CLEAN = ['TERM', 'LANG', 'LC_ALL', ...PROXIES, ...PROXIES.map((p) => p.toUpperCase())];
/** Host variables that steer the runtime, not the container. */
export const DROPPED_PREFIXES = ['APPTAINER_', 'SINGULARITY_'];

export type EnvOp =
  | { op: 'keep'; name: string }
  | { op: 'unset'; name: string }
  | { op: 'set'; name: string; value: string }
  | { op: 'override'; name: string; value: string };

export interface EnvPolicy {
  clean: boolean;
  ops: EnvOp[];
  prefixes: string[];
  dropPrefixes: string[];
  noEval: boolean;
}

export interface EnvInputs {
  cleanenv: boolean;
  /** --env values and --env-file lines, in order: NAME=VALUE. */
  overrides: readonly string[];
  home: string;
  pwd: string;
  imagePath: string;
  user: string;
  shell: boolean;
  /** --no-eval: override values are not shell-evaluated. */
  noEval?: boolean;
  /** --app NAME: the SCIF app, named as Apptainer names it to the image's scripts. */
  app?: string;
  /** --no-env NAME,...: host variables not passed (an override may still set them). */
  noEnv?: readonly string[];
}

export function composeEnv(i: EnvInputs): EnvPolicy {
  const ops: EnvOp[] = [];
  if (i.cleanenv) for (const name of KEPT_WHEN_CLEAN) ops.push({ op: 'keep', name });
  for (const name of [...NOT_PASSED, ...(i.noEnv ?? [])]) ops.push({ op: 'unset', name });
  const name = i.imagePath.split('/').pop() ?? i.imagePath;
  const set: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: i.home,
    PWD: i.pwd,
    USER: i.user,
    LOGNAME: i.user,
    CTR_CONTAINER: i.imagePath,
    CTR_NAME: name,
    APPTAINER_CONTAINER: i.imagePath,
    APPTAINER_NAME: name,
    SINGULARITY_CONTAINER: i.imagePath,
    SINGULARITY_NAME: name,
  };
  if (i.shell) set.PS1 = 'ctr> ';
  if (i.app !== undefined) set.APPTAINER_APPNAME = set.SINGULARITY_APPNAME = i.app;
  for (const [n, value] of Object.entries(set)) ops.push({ op: 'set', name: n, value });
  for (const kv of i.overrides) {
    const { name: n, value } = splitAssignment(kv);
    ops.push({ op: 'override', name: n, value });
  }
  return { clean: i.cleanenv, ops, prefixes: ENV_PREFIXES, dropPrefixes: DROPPED_PREFIXES, noEval: i.noEval ?? false };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function splitAssignment(kv: string): { name: string; value: string } {
  const eq = kv.indexOf('=');
  const name = eq < 0 ? kv : kv.slice(0, eq);
  if (eq < 0 || !NAME.test(name)) throw new CtrError(`environment variable "${kv}"`, 'expected NAME=VALUE');
  return { name, value: kv.slice(eq + 1) };
}

/** `--env A=1,B=2`: split on commas only where the next piece starts a new NAME=. */
export function splitEnvList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const piece of v.split(',')) {
      if (out.length && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(piece) && v.includes(',')) out[out.length - 1] += `,${piece}`;
      else out.push(piece);
    }
  }
  return out;
}
