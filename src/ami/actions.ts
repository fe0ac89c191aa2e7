// The actions the service offers from ShotGrid's right-click menu; each has its own endpoint POST /ami/<action>
// and may have its own secret token (AMI_SECRET_TOKEN_<ACTION>).
export const amiActions = ['upload-files', 'attach-files', 'download-zip', 'set-thumbnail', 'submit-for-review'] as const;

export type AmiAction = (typeof amiActions)[number];

/** The suffix of the action's own secret-token variable: `upload-files` → `UPLOAD_FILES`. */
export function amiActionEnvSuffix(action: AmiAction): string {
  return action.toUpperCase().replaceAll('-', '_');
}
