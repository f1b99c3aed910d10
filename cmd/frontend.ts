import { startFrontend, FRONTEND_DEFAULT_PORT } from '../imageservice/frontend/server.ts';
import { serviceConfig, envInt } from '../shared/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('imagefrontend', () =>
  startFrontend({
    config: serviceConfig('imagefrontend', FRONTEND_DEFAULT_PORT),
    maxUploadBytes: envInt('MAX_UPLOAD_BYTES', 50 * 2 ** 20),
  }),
);
