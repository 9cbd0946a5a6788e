// The tool's version, recorded in bundles and manifests.
export const VERSION = '0.1.0';
