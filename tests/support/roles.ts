// Login roles the tests connect as. Cluster-wide, like all roles.
export const TEMPLATE_DB = 'trustctl_test_template';

export const TEST_ROLES = [
  { name: 'trustctl_test_app', password: 'test-app-password', group: 'app_user' },
  { name: 'trustctl_test_op', password: 'test-op-password', group: 'trustctl_operator' },
  { name: 'trustctl_test_op2', password: 'test-op2-password', group: 'trustctl_operator' },
  { name: 'trustctl_test_nobody', password: 'test-nobody-password', group: 'public' },
] as const;

export type TestRoleName = (typeof TEST_ROLES)[number]['name'];
