// Download progress: one line, rewritten in place, on a terminal (stderr a TTY, not quiet),
// with the rate and the time left (builder/progress.ts RateMeter); nothing otherwise, so
// batch logs stay clean.
import { RateMeter } from '../builder/progress.js';

export class DownloadProgress {
  private blobs = 0;
  private readonly meter = new RateMeter(() => `downloading ${this.blobs} blob${this.blobs === 1 ? '' : 's'}`);

  add(bytes: number): void {
    this.meter.grow(bytes);
    this.blobs++;
  }

  bytes(n: number): void {
    this.meter.add(n);
  }

  end(): void {
    this.meter.end();
  }
}
