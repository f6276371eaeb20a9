// The plan for a definition file's %post and %test: the root file system being built,
// read-write, the user mapped to root, the host's network files, a fresh /tmp, and the
// standard environment. Pure, like compose.ts.
import { DEFAULT_PATH } from './env.js';
import { APT_NO_SANDBOX } from './fakeroot.js';
import { PlanWriter } from './words.js';

export function composeBuildPlan(rootfs: string, opts: { writable: boolean; hostFiles: Map<string, string>; env: Record<string, string>; aptNoSandbox?: boolean }): string[] {
  // Root over the ids of the namespace ctr build runs in: nested over its subordinate
  // range there (the launcher sees it), else one id with the privileged calls faked.
  const w = new PlanWriter().imageDir(rootfs).mapRoot().fakeIds().pidNs().pidNsInStep();
  if (opts.writable) w.writable();
  w.bind('/proc', '/proc', 'rw').bind('/sys', '/sys', 'rw').bind('/dev', '/dev', 'rw');
  w.tmpfs('/tmp', '1777');
  for (const [dst, src] of opts.hostFiles) w.bind(src, dst, 'ro', { optional: true });
  if (opts.aptNoSandbox) w.file(APT_NO_SANDBOX.path, APT_NO_SANDBOX.content);
  w.chdir('/').clearenv().keepenv('TERM').keepenv('http_proxy').keepenv('https_proxy');
  const env = { PATH: DEFAULT_PATH, HOME: '/root', USER: 'root', LOGNAME: 'root', DEBIAN_FRONTEND: 'noninteractive', ...opts.env };
  for (const [k, v] of Object.entries(env)) w.setenv(k, v);
  return w.words();
}
