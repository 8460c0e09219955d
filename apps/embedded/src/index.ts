export * from './embedded';
export * from './seed';
export * from './demo-world';
export { runDemoAgent } from './demo-agent';
