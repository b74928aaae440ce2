/** Jest via ts-jest (no build step): `npm test` runs the unit project,
 * `npm run test:integration` the one against a real Gangway stack
 * (tests/integration/test_backstage.py starts it and sets GANGWAY_IT). */
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  moduleNameMapper: { '^@gangway/backstage-common$': '<rootDir>/packages/common/src' },
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', isolatedModules: true }] },
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/packages/*/src/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/tests/**/*.it.ts'] },
  ],
};
