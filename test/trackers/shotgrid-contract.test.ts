import { startSandboxSite } from '../../src/sandbox/site.ts';
import { createTracker } from '../../src/trackers/create-tracker.ts';
import { createLogger } from '../../src/log.ts';
import { CONTRACT_REQUEST_CAP, trackerContract } from './tracker-contract.ts';

// The ShotGrid adapter, made as the service makes it, against the strict sandbox site: held to the Tracker contract.

trackerContract('ShotGrid', async (countRequestsTo) => {
  const site = await startSandboxSite();
  const tracker = createTracker(
    { kind: 'shotgrid', siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey, reviewMediaField: 'sg_uploaded_movie', maxConcurrentRequests: CONTRACT_REQUEST_CAP },
    { log: createLogger({ level: 'silent' }), dispatcher: countRequestsTo(site.url) },
  );
  const one = (type: 'Version' | 'Shot' | 'Project' | 'HumanUser', test: (fields: Record<string, unknown>) => boolean) => site.store.all(type).find((record) => test(record.fields))!;
  const version = one('Version', (fields) => fields.code === 'sh030_anim_v002');
  const shot = one('Shot', (fields) => fields.code === 'sh030');
  return {
    tracker,
    login: 'coord',
    userId: String(one('HumanUser', (fields) => fields.login === 'coord').id),
    version: { type: 'Version', id: String(version.id), name: String(version.fields.code) },
    shot: { type: 'Shot', id: String(shot.id), name: String(shot.fields.code) },
    projectId: String(one('Project', (fields) => fields.name === 'Demo').id),
    missingId: '999999',
    status: 'rev',
    attachmentsInParts: false,
    setLatency: (latencyMs) => site.faults.update({ latencyMs }),
    close: async () => {
      await tracker.close();
      await site.close();
    },
  };
});
