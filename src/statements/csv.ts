/** RFC 4180 CSV: CRLF line ends; a field holding a comma, quote, CR or LF is quoted, quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(fields: readonly string[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/**
 * Free text a customer chose (a token's name) must not run as a spreadsheet formula when an
 * admin opens the file: a leading =, +, -, @, tab or CR gets a leading apostrophe (OWASP).
 */
export function inertText(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}
