import { startMaster, masterDefaults, MASTER_DEFAULT_PORT } from '../imageservice/master/server.ts';
import { serviceConfig, envInt } from '../shared/config.ts';
import { runMain } from '../shared/main.ts';

await runMain('imagemaster', () =>
  startMaster({
    config: serviceConfig('imagemaster', MASTER_DEFAULT_PORT),
    leaseMs: envInt('LEASE_MS', masterDefaults.leaseMs),
    maxAttempts: envInt('MAX_ATTEMPTS', masterDefaults.maxAttempts),
    maxPixels: envInt('MAX_PIXELS', masterDefaults.maxPixels),
    maxUploadBytes: envInt('MAX_UPLOAD_BYTES', masterDefaults.maxUploadBytes),
    maxClaimWaitMs: envInt('MAX_CLAIM_WAIT_MS', masterDefaults.maxClaimWaitMs),
  }),
);
