/** Which codec a worker uses, and making one (the codec interface is in codec.ts). */
import type { Codec, CodecName, EncoderSettings } from './codec.ts';
import { loadSharp, sharpCodec } from './codecSharp.ts';
import { pngjsCodec } from './codecPngjs.ts';

/** A codec with its encoder settings (each codec's own default when none are given). */
export function createCodec(name: CodecName, encoder?: EncoderSettings): Codec {
  return name === 'sharp' ? sharpCodec(encoder) : pngjsCodec(encoder);
}

/**
 * The codec a worker will use: the one asked for, or pngjs with a warning when sharp can't load.
 * Loading sharp here, on the main thread, also keeps libvips loaded until every worker thread
 * has exited (sharp asks for this on glibc Linux).
 */
export async function resolveCodec(
  requested: CodecName,
  load: () => unknown = loadSharp,
): Promise<{ codec: CodecName; warning?: string }> {
  if (requested !== 'sharp') return { codec: requested };
  try {
    await load();
    return { codec: 'sharp' };
  } catch (err) {
    return { codec: 'pngjs', warning: `the sharp codec can't load on this platform (${(err as Error).message.split('\n')[0]}); using pngjs` };
  }
}
