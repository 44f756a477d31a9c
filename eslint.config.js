import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * Imports run one way (docs/architecture.md): each src folder below may import only the folders
 * listed after it in this order, never one before it.
 *   edges (service.ts, main.ts, http, console, cli, config, sandbox) > intake > audit > delivery > mapping > fhir, redis > shared
 * `above` names what a folder's files must not import; `npm run lint` fails on such an import.
 */
const edges = ["http", "console", "cli", "config", "sandbox"];
const layers = {
  intake: [...edges],
  audit: [...edges, "intake"],
  delivery: [...edges, "intake", "audit"],
  mapping: [...edges, "intake", "audit", "delivery"],
  fhir: [...edges, "intake", "audit", "delivery", "mapping", "redis"],
  redis: [...edges, "intake", "audit", "delivery", "mapping", "fhir"],
  shared: [...edges, "intake", "audit", "delivery", "mapping", "fhir", "redis"],
  sandbox: ["http", "console", "cli", "config", "intake", "audit", "delivery", "mapping"],
};
const importBoundaries = Object.entries(layers).map(([folder, above]) => ({
  files: [`src/${folder}/**`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          {
            regex: `^(\\.\\./)+(${above.join("|")})/`,
            message: `src/${folder} must not import this folder: imports run one way (docs/architecture.md).`,
          },
          {
            regex: "^(\\.\\./)+(service|main)\\.js$",
            message: `src/${folder} must not import the service wiring: imports run one way (docs/architecture.md).`,
          },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".data/", ".dbg/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { allowDefaultCaseForExhaustiveSwitch: false, requireDefaultForNonUnion: true },
      ],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
      "no-restricted-syntax": ["error", { selector: "ExportDefaultDeclaration", message: "Use named exports." }],
    },
  },
  {
    files: ["test/**", "bench/**"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "no-console": "off",
    },
  },
  {
    files: ["bin/**/*.js", "eslint.config.js"],
    ...tseslint.configs.disableTypeChecked,
  },
  { files: ["eslint.config.js", "vitest.config.ts"], rules: { "no-restricted-syntax": "off" } },
  ...importBoundaries,
);
