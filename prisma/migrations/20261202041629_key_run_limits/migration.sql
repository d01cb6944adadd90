-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "maxCheckpoints" INTEGER,
ADD COLUMN     "maxEvalTokens" BIGINT,
ADD COLUMN     "maxParameters" BIGINT,
ADD COLUMN     "maxTrainingTokens" BIGINT;

