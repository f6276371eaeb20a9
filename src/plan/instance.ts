// Joining an instance with flags of the exec's own (ctr exec --env A=1 instance://NAME CMD).
// The instance's container is built once, at `instance start`; a process that joins it can
// still have its own environment, working directory, action and command, which are words
// the launcher applies in the joining process only (after setns). So the joiner's plan is
// the instance's container words and the exec's per-process words; the launcher names an
// instance by its tag alone (--join-instance), so the two need not agree on the rest.
// Flags that would change the container (mounts, namespaces, limits) are refused. Pure.
import { CtrError } from '../errors.js';
import { PLAN_WORDS, type PlanWordId } from './words.js';

/** Words the launcher applies to the joining process alone (native/launch_main.c after
 * join_container: the working directory, the environment, the action, the umask), and
 * the start's --ready-fd (a joiner with one would be taken for the instance's start). */
const PER_PROCESS: ReadonlySet<PlanWordId> = new Set<PlanWordId>([
  'CHDIR', 'CHDIR_OPTIONAL', 'CLEARENV', 'KEEPENV', 'UNSETENV', 'SETENV', 'ENV_OVERRIDE', 'ENV_PREFIX',
  'DROP_ENV_PREFIX', 'NO_EVAL', 'ENV_PREPEND', 'ACTION', 'UMASK', 'DEBUG', 'READY_FD',
]);

const BY_NAME = new Map<string, PlanWordId>(Object.entries(PLAN_WORDS).map(([id, w]): [string, PlanWordId] => [w.name, id as PlanWordId]));

/** WORDS (a plan without its command) split into the container's and the process's. */
function split(words: readonly string[]): { container: string[]; process: string[] } {
  const out = { container: [] as string[], process: [] as string[] };
  for (let i = 0; i < words.length;) {
    const id = BY_NAME.get(words[i]);
    if (!id) throw new Error(`plan: unknown word ${words[i]}`);
    const n = 1 + PLAN_WORDS[id].arity;
    (PER_PROCESS.has(id) ? out.process : out.container).push(...words.slice(i, i + n));
    i += n;
  }
  return out;
}

/** The plan of a process joining an instance: the instance's container, the exec's own
 * per-process words (the plan version stays first: it is a container word). */
export function joinInstanceWords(instance: readonly string[], exec: readonly string[]): string[] {
  return [...split(instance).container, ...split(exec).process];
}

/** Launch flags that exec/run/shell instance://NAME take: they shape only the process. */
const PER_EXEC_FLAGS: ReadonlySet<string> = new Set([
  'cleanenv', 'env', 'env-file', 'no-env', 'no-eval', 'pwd', 'debug', 'shell', 'no-umask',
  'pid', 'no-init', 'no-plan-cache',
]);

/** Refuse, naming it, the first of GIVEN (flag names, as the launch flag table has them)
 * that would change the instance's container. */
export function checkInstanceFlags(target: string, given: readonly string[]): void {
  const bad = given.find((f) => !PER_EXEC_FLAGS.has(f));
  if (bad) {
    throw new CtrError(`--${bad} with ${target}`, 'it would change the container, which the instance already has',
      { hint: `give it to ctr instance start; a joining process takes only ${[...PER_EXEC_FLAGS].slice(0, 9).map((f) => `--${f}`).join(', ')}` });
  }
}
