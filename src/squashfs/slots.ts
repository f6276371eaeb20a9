// Where the block processor puts each file's inode: one pointer-sized slot per file, in
// native memory that must not move while the processor runs (it writes the pointer when it
// finishes the file, which may be long after add() returned). Chunks of 1,024 slots, so
// the address of a slot never changes as more are added.
import koffi from 'koffi';

const SLOTS_PER_CHUNK = 1024;

export class InodeSlots {
  private chunks: bigint[] = [];
  private views: BigUint64Array[] = [];
  private count = 0;

  /** A new slot, empty (0n): its number. */
  add(): number {
    const i = this.count++;
    if (i % SLOTS_PER_CHUNK === 0) {
      const chunk = koffi.alloc('void *', SLOTS_PER_CHUNK) as bigint;
      const view = new BigUint64Array(koffi.view(chunk, 8 * SLOTS_PER_CHUNK));
      view.fill(0n);
      this.chunks.push(chunk);
      this.views.push(view);
    }
    return i;
  }

  /** The native address of slot I, to hand to sqfs_block_processor_begin_file(). */
  address(i: number): bigint {
    return this.chunks[Math.floor(i / SLOTS_PER_CHUNK)] + BigInt((i % SLOTS_PER_CHUNK) * 8);
  }

  /** The inode the block processor made for slot I (0n: none yet). */
  inode(i: number): bigint {
    return this.views[Math.floor(i / SLOTS_PER_CHUNK)][i % SLOTS_PER_CHUNK];
  }

  /** Hand every inode still in a slot to FREE (they are ours), then the slots' memory. */
  free(freeInode: (p: bigint) => void): void {
    for (let i = 0; i < this.count; i++) {
      const p = this.inode(i);
      if (p) freeInode(p);
    }
    this.views = [];
    for (const c of this.chunks) koffi.free(c);
    this.chunks = [];
    this.count = 0;
  }
}
