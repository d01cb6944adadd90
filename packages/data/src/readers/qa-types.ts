/** One supervised fine-tuning example as text. */
export interface QaPair {
  question: string;
  answer: string;
}
