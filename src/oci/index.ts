// The OCI/Docker image API for the rest of ctr: pull to a SIF, or fetch an image's config
// and layers (decompressed tar streams) to build from.
export { pullToSif, type PullOptions } from './pull.js';
export { fetchImage, type FetchOptions, type FetchedImage } from './source.js';
export { parseReference, type ImageRef } from './reference.js';
export { containerFiles, shQuote, type ContainerFiles } from './container.js';
export { RootfsTree, type Inode } from './layers.js';
export { readLayers, writeRootfs } from './rootfs.js';
export type { ImageConfig, Platform } from './manifest.js';
