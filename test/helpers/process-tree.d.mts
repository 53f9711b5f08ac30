export function descendantsOf(root: number): number[];
export function describeProcesses(pids: number[]): string;
export function killAll(pids: number[]): void;
