// The plan for a definition file's %post and %test: the root file system being built,
// read-write, the user mapped to root, the host's network files, a fresh /tmp, and the
// standard environment. Pure, like compose.ts.
import { DEFAULT_PATH } from './env.js';

export function composeBuildPlan(rootfs: string, opts: { writable: boolean; hostFiles: Map<string, string>; env: Record<string, string> }): string[] {
  const args = ['--image-dir', rootfs, '--map-root', '--pid-ns'];
  if (opts.writable) args.push('--writable');
  args.push('--bind', '/proc', '/proc', 'rw', '--bind', '/sys', '/sys', 'rw', '--bind', '/dev', '/dev', 'rw');
  args.push('--tmpfs', '/tmp', '1777');
  for (const [dst, src] of opts.hostFiles) args.push('--bind', src, dst, 'ro?');
  args.push('--chdir', '/', '--clearenv', '--keepenv', 'TERM', '--keepenv', 'http_proxy', '--keepenv', 'https_proxy');
  const env = { PATH: DEFAULT_PATH, HOME: '/root', USER: 'root', LOGNAME: 'root', DEBIAN_FRONTEND: 'noninteractive', ...opts.env };
  for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
  return args;
}
