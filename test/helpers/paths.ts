import { fileURLToPath } from 'node:url';

/** The repository root (this file is dist/test/helpers/paths.js once built). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
/** Where the unprivileged user runs ctr from: the repo, or a readable copy of it. */
export const CTR_ROOT = process.env.CTR_TEST_ROOT ?? REPO;
export const CTR_MAIN = `${CTR_ROOT}/dist/src/cli/main.js`;
/**
 * The command users run: exec, run, shell and plan start from the start-up snapshot.
 * bin/ctr, or CTR_TEST_BIN: native/build/ctr (the launcher as ctr, what make install
 * puts in PREFIX/bin) runs the same tests through launch_front.c.
 */
export const CTR_BIN = process.env.CTR_TEST_BIN ?? `${CTR_ROOT}/bin/ctr`;
export const LAUNCHER = `${CTR_ROOT}/native/build/ctr-launch`;
/** Built test images, shared by test files and kept between runs. */
export const CACHE = process.env.CTR_TEST_CACHE ?? '/var/tmp/ctr-test-cache';
/**
 * The SIF reference tool (Sylabs' siftool), which scripts/siftool.sh builds from Debian's
 * sources into CACHE on first use; the harness builds it before any test ($CTR_SIFTOOL
 * overrides).
 */
export const SIFTOOL = process.env.CTR_SIFTOOL ?? `${REPO}/scripts/siftool.sh`;
