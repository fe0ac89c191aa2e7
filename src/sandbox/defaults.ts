// The sandbox site's public credentials: documented in the README, used by the seed and by the service's
// config in sandbox mode. Public by design; production refuses to run the sandbox.
export const sandboxDefaults = {
  scriptName: 'ami-transfer',
  scriptKey: 'sandbox-key',
  amiSecret: 'sandbox-secret',
  /** Password of every seeded person (artist, coord, outsider). */
  userPassword: 'sandbox-password',
} as const;
