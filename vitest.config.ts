import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'cdk.out/**', '.data/**'],
    testTimeout: 60_000,
    hookTimeout: 420_000,
    pool: 'forks',
    // The same command writes the JSON and JUnit reports CI uploads, so CI runs exactly `npm test`.
    reporters: ['default', 'json', 'junit'],
    outputFile: { json: 'reports/vitest-results.json', junit: 'reports/junit.xml' },
    // Most files wait on PostgreSQL, Redis, moto or a child process; two forks keep both cores busy.
    maxWorkers: 2,
    // Node 20 is the supported runtime here; the SDK's notice about its future Node 22 floor is noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    globalSetup: ['stacks/testing/global-setup.ts'],
    // GitHub's workflow parser imports its JSON schema without an import attribute, which Node refuses; Vite inlines it.
    server: { deps: { inline: ['@actions/workflow-parser'] } },
  },
});
