// Download progress: one line, rewritten in place, on a terminal (stderr a TTY and CTR_QUIET
// unset); nothing at all otherwise, so batch logs stay clean.
export class DownloadProgress {
  private done = 0;
  private total = 0;
  private blobs = 0;
  private last = 0;
  private shown = false;
  private readonly on = !!process.stderr.isTTY && !process.env.CTR_QUIET;

  add(bytes: number): void {
    this.total += bytes;
    this.blobs++;
  }

  bytes(n: number): void {
    this.done += n;
    if (!this.on) return;
    const now = Date.now();
    if (now - this.last < 200) return;
    this.last = now;
    this.draw();
  }

  private draw(): void {
    const mb = (b: number) => (b / 1e6).toFixed(1);
    process.stderr.write(`\rctr: downloading ${this.blobs} blob${this.blobs === 1 ? '' : 's'}: ${mb(this.done)} / ${mb(this.total)} MB\x1b[K`);
    this.shown = true;
  }

  end(): void {
    if (!this.shown) return;
    this.draw();
    process.stderr.write('\n');
    this.shown = false;
  }
}
