/**
 * A prepared dataset is a folder of a few files (manifest, token shards, held-out Q&A). The
 * artifact store keeps single blobs, so a folder travels as one pack:
 *
 *   "MGLMPACK" | u32 LE header length | header JSON [{ name, size }] | file bytes, in order
 *
 * Packing streams the files; unpacking writes them into a temporary folder that is renamed
 * into place, so a reader never sees half a dataset. A folder already in place is kept.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

const MAGIC = Buffer.from('MGLMPACK');
const READ_SIZE = 1 << 20;

interface Entry {
  name: string;
  size: number;
}

/** The bytes of a pack of every file directly in `dir`, in name order. */
export async function* packDirectory(dir: string): AsyncGenerator<Uint8Array> {
  const names = (await fs.readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  const entries: Entry[] = [];
  for (const name of names) entries.push({ name, size: (await fs.stat(path.join(dir, name))).size });
  const header = Buffer.from(JSON.stringify(entries));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.byteLength);
  yield Buffer.concat([MAGIC, length, header]);
  for (const { name } of entries) {
    const file = await fs.open(path.join(dir, name), 'r');
    try {
      for await (const chunk of file.createReadStream({ highWaterMark: READ_SIZE, autoClose: false }))
        yield chunk as Buffer;
    } finally {
      await file.close();
    }
  }
}

/** Unpacks a pack file into `dir` (created; an existing complete `dir` is kept). */
export async function unpackToDirectory(packFile: string, dir: string): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  const input = await fs.open(packFile, 'r');
  try {
    const prefix = Buffer.alloc(MAGIC.byteLength + 4);
    await input.read(prefix, 0, prefix.byteLength, 0);
    if (!prefix.subarray(0, MAGIC.byteLength).equals(MAGIC)) throw new Error(`${packFile} is not a dataset pack`);
    const headerLength = prefix.readUInt32LE(MAGIC.byteLength);
    const header = Buffer.alloc(headerLength);
    await input.read(header, 0, headerLength, prefix.byteLength);
    const entries = JSON.parse(header.toString('utf8')) as Entry[];
    let offset = prefix.byteLength + headerLength;
    const buffer = Buffer.alloc(READ_SIZE);
    for (const { name, size } of entries) {
      if (name !== path.basename(name) || name.startsWith('.'))
        throw new Error(`${packFile}: unsafe file name ${JSON.stringify(name)}`);
      const out = await fs.open(path.join(tmp, name), 'w');
      try {
        for (let done = 0; done < size;) {
          const { bytesRead } = await input.read(buffer, 0, Math.min(READ_SIZE, size - done), offset + done);
          if (bytesRead === 0) throw new Error(`${packFile} is truncated (${name})`);
          await out.write(buffer.subarray(0, bytesRead));
          done += bytesRead;
        }
      } finally {
        await out.close();
      }
      offset += size;
    }
  } catch (error) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw error;
  } finally {
    await input.close();
  }
  try {
    await fs.rename(tmp, dir);
  } catch (error) {
    // Another job of this worker (or another worker sharing the folder) unpacked it first:
    // theirs is the same bytes, and someone may be reading it. Keep it, drop ours.
    await fs.rm(tmp, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
}
