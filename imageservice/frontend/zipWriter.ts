/**
 * A .zip of stored entries written as it goes (PNGs are compressed already, so deflating again gains nothing):
 * each entry is its local header and bytes, and the central directory follows the last one. Entries and the
 * archive stay under 4 GiB each (no zip64): the caller stops adding before that.
 */
import zlib from 'node:zlib';

export const ZIP_LIMIT_BYTES = 0xffff_fff0;

export class ZipWriter {
  private readonly central: Buffer[] = [];
  private offset = 0;
  private count = 0;

  constructor(private readonly write: (chunk: Buffer) => void) {}

  /** Whether another entry of `size` bytes still fits. */
  fits(name: string, size: number): boolean {
    return this.offset + 30 + Buffer.byteLength(name) + size + 46 * (this.count + 1) < ZIP_LIMIT_BYTES && this.count < 0xffff;
  }

  add(name: string, data: Buffer): void {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = zlib.crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // the name is UTF-8
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0x800, 8);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(this.offset, 42);
    this.central.push(entry, nameBytes);
    this.write(Buffer.concat([local, nameBytes]));
    this.write(data);
    this.offset += local.length + nameBytes.length + data.length;
    this.count++;
  }

  /** The central directory and its end record. */
  finish(): void {
    const directory = Buffer.concat(this.central);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(this.count, 8);
    end.writeUInt16LE(this.count, 10);
    end.writeUInt32LE(directory.length, 12);
    end.writeUInt32LE(this.offset, 16);
    this.write(Buffer.concat([directory, end]));
  }
}
