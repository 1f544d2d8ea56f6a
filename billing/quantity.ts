/** A usage quantity: a non-negative decimal with at most 3 places, as metering stores it. */
const QUANTITY = /^\d+(\.\d{1,3})?$/;
/** Stripe refuses meter event values with more than 15 significant digits. */
const MAX_DIGITS = 15;

/** The quantity in thousandths, or null when the text is not a valid quantity (negative, NaN, too precise). */
export function parseQuantity(text: string): bigint | null {
  if (!QUANTITY.test(text)) return null;
  const [whole, fraction = ''] = text.split('.');
  const milli = BigInt(whole!) * 1000n + BigInt(fraction.padEnd(3, '0'));
  return formatQuantity(milli).replace('.', '').replace(/^0+/, '').length > MAX_DIGITS ? null : milli;
}

/** Thousandths back to the shortest decimal text: 12500n -> "12.5". */
export function formatQuantity(milli: bigint): string {
  const whole = milli / 1000n;
  const fraction = (milli % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}
