import { startStorage, STORAGE_DEFAULT_PORT, DEFAULT_MAX_IMAGE_BYTES } from '../imageservice/storage/server.ts';
import { serviceConfig, envInt, envString } from '../shared/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('imagestorage', () =>
  startStorage({
    config: serviceConfig('imagestorage', STORAGE_DEFAULT_PORT),
    maxImageBytes: envInt('MAX_IMAGE_BYTES', DEFAULT_MAX_IMAGE_BYTES),
    fsync: envString('STORAGE_FSYNC', 'true') !== 'false',
  }),
);
