// handleSummary for every suite: JSON and JUnit files under REPORT_DIR, a short text on stdout.
import { type SummaryData, summaryOutputs } from './report.ts';

export function summaryHandler(suite: string): (data: SummaryData) => Record<string, string> {
  return (data) => summaryOutputs(suite, data, __ENV.REPORT_DIR || 'reports');
}
