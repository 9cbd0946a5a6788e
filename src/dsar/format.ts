// Format names written into bundles and DPO records, and checked by verify.
export const BUNDLE_FORMAT = 'trustctl-dsar-bundle/1';
export const DPO_RECORD_FORMAT = 'trustctl-dsar-dpo-record/1';
