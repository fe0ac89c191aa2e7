import { startFtrackSandbox } from '../../src/sandbox/ftrack/site.ts';
import { createTracker } from '../../src/trackers/create-tracker.ts';
import { createLogger } from '../../src/log.ts';
import { CONTRACT_REQUEST_CAP, trackerContract } from './tracker-contract.ts';

// The ftrack adapter, made as the service makes it, against the ftrack sandbox (strict where ftrack.md says so,
// pessimistic where it says UNCONFIRMED): held to the same Tracker contract as ShotGrid.

trackerContract('ftrack', async (countRequestsTo) => {
  const site = await startFtrackSandbox();
  const tracker = createTracker(
    { kind: 'ftrack', serverUrl: site.url, apiUser: site.apiUser, apiKey: site.apiKey, maxConcurrentRequests: CONTRACT_REQUEST_CAP },
    { log: createLogger({ level: 'silent' }), dispatcher: countRequestsTo(site.url) },
  );
  const one = (type: 'AssetVersion' | 'Asset' | 'Shot' | 'Project' | 'User', test: (attrs: Record<string, unknown>) => boolean) => site.store.all(type).find((entity) => test(entity.attrs))!;
  const asset = one('Asset', (attrs) => attrs.name === 'sh030_comp');
  const version = one('AssetVersion', (attrs) => attrs.asset_id === asset.attrs.id && attrs.version === 1);
  const shot = one('Shot', (attrs) => attrs.name === 'sh030');
  return {
    tracker,
    login: 'coord',
    userId: String(one('User', (attrs) => attrs.username === 'coord').attrs.id),
    version: { type: 'AssetVersion', id: String(version.attrs.id), name: 'sh030_comp v1' },
    shot: { type: 'Shot', id: String(shot.attrs.id), name: 'sh030' },
    projectId: String(one('Project', (attrs) => attrs.name === 'demo').attrs.id),
    // A UUID no record has (an id that cannot be a UUID is covered in ftrack-tracker.test.ts).
    missingId: '00000000-0000-4000-8000-000000000000',
    status: 'Pending Review',
    attachmentsInParts: true,
    setLatency: (latencyMs) => site.faults.update({ latencyMs }),
    close: async () => {
      await tracker.close();
      await site.close();
    },
  };
});
