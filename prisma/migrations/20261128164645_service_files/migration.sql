-- AlterTable
ALTER TABLE "Evaluation" ADD COLUMN     "perStage" JSONB;

-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "params" INTEGER,
ADD COLUMN     "tokenizer" JSONB;

-- CreateTable
CREATE TABLE "DatasetFile" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "size" BIGINT NOT NULL,
    "records" INTEGER NOT NULL,
    "fields" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "artifactSha256" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DatasetFile_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "DatasetFile_artifactSha256_idx" ON "DatasetFile"("artifactSha256");

-- AddForeignKey
ALTER TABLE "DatasetFile" ADD CONSTRAINT "DatasetFile_artifactSha256_fkey" FOREIGN KEY ("artifactSha256") REFERENCES "Artifact"("sha256") ON DELETE RESTRICT ON UPDATE CASCADE;

