// The stub lives in tools/ so `npm run stripe:local` (built without test/) can use it too.
export * from '../../tools/stripe-stub.js';
